//! A guard run before calamine opens an .xls file: .xls workbooks are
//! Compound File Binary containers whose streams are chains of sectors
//! linked through the file allocation table (FAT). calamine 0.38 follows a
//! chain until its end marker without a bound, so a damaged FAT whose chain
//! loops makes it allocate without limit (a fuzzed file reached 23 GB), and a
//! link past the table's end makes it index out of bounds.
//!
//! Input: the file's bytes; output: Ok, or the reason the FAT is unusable.
//! It checks only what calamine does not (loops and links past the table);
//! anything else it cannot read (short header, sectors past the end of the
//! file) it leaves to calamine, which reports those as errors. No I/O.

const SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// Largest regular sector id; larger values are markers (end of chain, free, ...).
const MAXREGSECT: u32 = 0xFFFF_FFFA;
const HEADER_LEN: usize = 512;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.chunks_exact(4).filter_map(|c| c.try_into().ok()).map(u32::from_le_bytes)
}

/// Ok unless the FAT has a loop or a link past its end.
pub(crate) fn check_sector_chains(bytes: &[u8]) -> Result<(), String> {
    match read_fat(bytes)? {
        Some(fat) => check_chains_end(&fat),
        None => Ok(()),
    }
}

/// The file's sectors as calamine reads them: numbered from the end of the
/// 512-byte header whatever the sector size, ids up to len / size, a sector
/// cut short by the end of the file is read short.
struct Sectors<'a> {
    /// The file after its header.
    data: &'a [u8],
    size: usize,
    max_id: usize,
}

impl Sectors<'_> {
    /// Sector `id`, or None past `max_id`.
    fn get(&self, id: u32) -> Option<&[u8]> {
        let id = usize::try_from(id).ok()?;
        if id > self.max_id {
            return None;
        }
        let start = id.checked_mul(self.size)?.min(self.data.len());
        let end = start.saturating_add(self.size).min(self.data.len());
        self.data.get(start..end)
    }
}

/// The FAT of a compound file; Ok(None) when `bytes` is not one or a
/// sector is unreadable (calamine reports those), Err when the DIFAT loops.
fn read_fat(bytes: &[u8]) -> Result<Option<Vec<u32>>, String> {
    let Some(header) = bytes.get(..HEADER_LEN) else { return Ok(None) };
    if header.get(..8) != Some(&SIGNATURE[..]) {
        return Ok(None);
    }
    let shift = header.get(0x1E..0x20).and_then(|b| b.try_into().ok()).map(u16::from_le_bytes).unwrap_or(0);
    if shift != 9 && shift != 12 {
        return Ok(None);
    }
    let size = 1usize << shift;
    let sectors = Sectors { data: bytes.get(HEADER_LEN..).unwrap_or_default(), size, max_id: bytes.len() / size };
    let Some(difat) = fat_sector_ids(header, &sectors)? else { return Ok(None) };
    let mut fat: Vec<u32> = Vec::new();
    for id in difat.into_iter().filter(|id| *id <= MAXREGSECT) {
        let Some(s) = sectors.get(id) else { return Ok(None) };
        fat.extend(u32s(s));
    }
    Ok(Some(fat))
}

/// The FAT's sector ids: 109 in the header, then the DIFAT chain; Ok(None)
/// when a DIFAT sector is unreadable, Err when the chain loops.
fn fat_sector_ids(header: &[u8], sectors: &Sectors<'_>) -> Result<Option<Vec<u32>>, String> {
    let mut difat: Vec<u32> = u32s(header.get(0x4C..).unwrap_or_default()).collect();
    let mut next = u32_at(header, 0x44).unwrap_or(u32::MAX);
    let mut hops = 0usize;
    while next <= MAXREGSECT {
        hops += 1;
        if hops > sectors.max_id + 1 {
            return Err("the chain of FAT index sectors (DIFAT) loops".to_string());
        }
        let Some(s) = sectors.get(next) else { return Ok(None) };
        let mut entries: Vec<u32> = u32s(s).collect();
        next = entries.pop().unwrap_or(u32::MAX);
        difat.extend(entries);
    }
    Ok(Some(difat))
}

/// Every chain in `fat` ends: no loops, no links past the table.
fn check_chains_end(fat: &[u32]) -> Result<(), String> {
    let mut state = vec![0u8; fat.len()]; // 0 unvisited, 1 on the current walk, 2 ends
    let mut walk = Vec::new();
    for start in 0..fat.len() {
        walk.clear();
        let mut current = start;
        loop {
            match state.get(current) {
                Some(1) => return Err(format!("the sector chain through sector {current} loops")),
                Some(0) => {}
                _ => break,
            }
            if let Some(s) = state.get_mut(current) {
                *s = 1;
            }
            walk.push(current);
            let link = fat.get(current).copied().unwrap_or(u32::MAX);
            if link > MAXREGSECT {
                break;
            }
            let link_index = usize::try_from(link).unwrap_or(usize::MAX);
            if link_index >= fat.len() {
                return Err(format!(
                    "sector {current} links to sector {link}, past the allocation table ({} sectors)",
                    fat.len()
                ));
            }
            current = link_index;
        }
        for &s in &walk {
            if let Some(v) = state.get_mut(s) {
                *v = 2;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn areas_xls() -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.xls")).unwrap()
    }

    /// Offset of FAT entry `id` (FAT sectors listed in the header).
    fn fat_entry(bytes: &[u8], id: u32) -> usize {
        let size = 1usize << u16::from_le_bytes([bytes[0x1E], bytes[0x1F]]);
        let per_sector = size / 4;
        let fat_sector = u32_at(bytes, 0x4C + 4 * (id as usize / per_sector)).unwrap() as usize;
        HEADER_LEN + fat_sector * size + (id as usize % per_sector) * 4
    }

    #[test]
    fn valid_workbook_passes() {
        assert_eq!(check_sector_chains(&areas_xls()), Ok(()));
        assert_eq!(check_sector_chains(b"not a compound file"), Ok(()));
        assert_eq!(check_sector_chains(&[]), Ok(()));
    }

    #[test]
    fn looping_directory_chain_is_refused() {
        let mut bytes = areas_xls();
        let dir_start = u32_at(&bytes, 0x30).unwrap();
        let at = fat_entry(&bytes, dir_start);
        bytes[at..at + 4].copy_from_slice(&dir_start.to_le_bytes());
        let err = check_sector_chains(&bytes).unwrap_err();
        assert!(err.contains("loops"), "{err}");
    }

    #[test]
    fn link_past_the_table_is_refused() {
        let mut bytes = areas_xls();
        let dir_start = u32_at(&bytes, 0x30).unwrap();
        let at = fat_entry(&bytes, dir_start);
        bytes[at..at + 4].copy_from_slice(&0x00FF_0000u32.to_le_bytes());
        let err = check_sector_chains(&bytes).unwrap_err();
        assert!(err.contains("past the allocation table"), "{err}");
    }
}
