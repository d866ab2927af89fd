//! Statistics over encrypted contributions, without I/O.
//!
//! Each statistic has four sides:
//! - relay: plaintext column values -> what to encrypt (`contribution`);
//! - processor: a state machine that asks for rounds of contributions and for
//!   decryptions ("releases") until the result is known (`planner`, `search`);
//! - authority: which releases of a registered aggregate are permitted, and the
//!   noise each one needs (`release`, `dp`);
//! - the result, exact where the mode is exact (`result`).
//!
//! Inputs come from `protocol` (decoded messages) and `data` (column values via
//! the relay actor); outputs go back to `protocol`. Nothing here sees a secret key.

pub mod contribution;
pub mod dp;
pub mod error;
pub mod fixed;
pub mod grid;
pub mod limbs;
pub mod limits;
pub mod planner;
pub mod policy;
pub mod release;
pub mod result;
pub mod search;
pub mod statistic;
pub mod uncertainty;

pub use contribution::{Aggregate, Contribution, RelayTask};
pub use dp::{discrete_laplace, Epsilon, PrivacyBudget};
pub use error::StatsError;
pub use grid::Grid;
pub use planner::{PlanStep, Planner};
pub use policy::ReleaseSlot;
pub use release::Release;
pub use result::{ExactValue, StatResult};
pub use statistic::{QueryParams, Statistic};
