//! Issue 14: the web console's HTTP API, driven with actix-web's test
//! utilities against a real cluster (`crux-node` processes over QUIC): the
//! cluster page, an exact median equal to `crux-node query --json`, a
//! histogram drawn as SVG, history with CSV and JSON exports, an unknown
//! column answered with "did you mean", bad input, CSRF refusals, the 404
//! page, security headers; and the remote rules (refusal without
//! `--allow-remote`, login token) with a stand-in processor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::web::Data;
use common::cluster::{Cluster, BIN};
use crux::console::security::Access;
use crux::console::state::ProcessorLink;
use crux::console::{app, Console};
use crux::protocol::{ProcessorRequest, ProcessorResponse, QueryId, QueryProgress};
use crux::stats::Statistic;
use zeroize::Zeroizing;

const NAMES: [&str; 6] = ["authority-1", "authority-2", "processor", "relay-1", "relay-2", "relay-3"];

fn population() -> Vec<String> {
    ["Population", "All usual residents", "2021"].iter().map(|s| s.to_string()).collect()
}

/// A response's status, headers and body as text.
struct Page {
    status: StatusCode,
    headers: header::HeaderMap,
    body: String,
}

async fn send<S, B>(service: &S, request: actix_http::Request) -> Page
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(service, request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    Page { status, headers, body }
}

/// The session cookie (name=value) a response sets.
fn cookie_of(page: &Page) -> String {
    let set = page.headers.get(header::SET_COOKIE).expect("a session cookie").to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

/// The CSRF token in a page's form.
fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    body[at..].split('"').next().unwrap().to_string()
}

/// The text inside the element with `id` (its first text node).
fn text_of(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let rest = &body[at..];
    let start = rest.find('>')? + 1;
    Some(rest[start..].split('<').next()?.to_string())
}

fn get(uri: &str, cookie: &str) -> actix_http::Request {
    TestRequest::get().uri(uri).insert_header((header::COOKIE, cookie.to_string())).to_request()
}

fn post(uri: &str, cookie: &str, form: &[(&str, &str)]) -> actix_http::Request {
    TestRequest::post().uri(uri).insert_header((header::COOKIE, cookie.to_string())).set_form(form).to_request()
}

fn assert_security_headers(page: &Page) {
    let csp = page.headers.get("content-security-policy").expect("a CSP header").to_str().unwrap();
    for directive in ["default-src 'none'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("script-src"), "no script source is allowed: {csp}");
    assert_eq!(page.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(page.headers.get("referrer-policy").unwrap(), "no-referrer");
}

/// Posts the query form; follows to the job page and polls it until the
/// job is done. Returns the finished job page.
async fn run_query<S, B>(service: &S, cookie: &str, form: &[(&str, &str)]) -> Page
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let started = send(service, post("/query", cookie, form)).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let job = started.headers.get(header::LOCATION).unwrap().to_str().unwrap().to_string();
    assert!(job.starts_with("/jobs/"), "{job}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = send(service, get(&job, cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if !page.body.contains("Query running") {
            return page;
        }
        // a running job's page refreshes itself every second, without script
        assert!(page.body.contains("<meta http-equiv=\"refresh\" content=\"1\">"), "{}", page.body);
        assert!(Instant::now() < deadline, "job {job} still running: {}", page.body);
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

#[actix_web::test]
async fn the_console_answers_as_the_cli_over_a_real_cluster() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cluster = Cluster::init(&["--exact", "--publish-columns"]);
    cluster.start_all(&NAMES);
    cluster.wait_up(&NAMES, Duration::from_secs(60));
    let console = Console::new(cluster.config("user"), Access::Local);
    let service = test::init_service(app(Data::new(console))).await;

    // the query page lists published columns and sets a session cookie
    let page = send(&service, TestRequest::get().uri("/query").to_request()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_security_headers(&page);
    assert!(page.body.contains("Population / All usual residents / 2021"), "{}", page.body);
    assert!(page.body.contains("never from the data itself"), "bounds guidance");
    let cookie = cookie_of(&page);
    let csrf = csrf_of(&page.body);

    let column = serde_json::to_string(&population()).unwrap();
    let ctx = Ctx { service: &service, cluster: &cluster, cookie, csrf, column };
    cluster_page_and_csrf_refusals(&ctx).await;
    median_and_histogram_as_the_cli(&ctx).await;
    noisy_mean_and_cdf(&ctx).await;
    readable_errors(&ctx).await;
    history_and_exports(&ctx).await;
    not_found_pages(&ctx).await;
}

/// What the phases of the cluster test share.
struct Ctx<'a, S> {
    service: &'a S,
    cluster: &'a Cluster,
    cookie: String,
    csrf: String,
    /// the demo column as the form's select sends it
    column: String,
}

/// The cluster page; POSTs without the session's CSRF token are refused.
async fn cluster_page_and_csrf_refusals<S, B>(ctx: &Ctx<'_, S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (service, cluster, cookie, csrf) = (ctx.service, ctx.cluster, &ctx.cookie, &ctx.csrf);
    // cluster: every node with role, state, address; budgets per authority
    let page = send(&service, get("/cluster", cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for name in NAMES {
        assert!(page.body.contains(&format!("<td>{name}</td>")), "{name} missing: {}", page.body);
    }
    assert_eq!(page.body.matches("<td class=\"up\">up</td>").count(), NAMES.len(), "{}", page.body);
    assert!(page.body.contains(&format!("127.0.0.1:{}", cluster.ports.base())), "processor address");
    assert!(text_of(&page.body, "budgets").is_some() && page.body.contains("class=\"remaining\">10<"), "{}", page.body);
    assert!(page.body.contains("id=\"budget\"") && page.body.contains("role=\"img\""), "budget chart");

    // CSRF: a POST without the token, or with another, is refused
    let no_token = [("column", ""), ("label1", "Land"), ("statistic", "count"), ("mode", "exact")];
    let page = send(&service, post("/query", cookie, &no_token)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("CSRF token"), "{}", page.body);
    let mut wrong = no_token.to_vec();
    wrong.push(("csrf", "0123456789abcdef0123456789abcdef"));
    assert_eq!(send(&service, post("/query", cookie, &wrong)).await.status, StatusCode::FORBIDDEN);
    // a POST from a browser without the session cookie has no valid token either
    let mut foreign = no_token.to_vec();
    foreign.push(("csrf", csrf));
    let page = send(&service, TestRequest::post().uri("/query").set_form(&foreign).to_request()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(lock_history_is_empty(&service, cookie).await, "refused POSTs ran no query");
}

/// An exact median and a histogram, as the CLI answers them.
async fn median_and_histogram_as_the_cli<S, B>(ctx: &Ctx<'_, S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (service, cluster, cookie, csrf, column) = (ctx.service, ctx.cluster, &ctx.cookie, &ctx.csrf, &ctx.column);
    // median, exact: the same exact value as `crux-node query median --exact --json`
    let form = [("csrf", csrf.as_str()), ("column", column), ("statistic", "median"), ("mode", "exact")];
    let page = run_query(&service, cookie, &form).await;
    assert_security_headers(&page);
    let cli = cluster.answer("median", &["--exact"], &population()).0.unwrap();
    let shown = text_of(&page.body, "exact-value").unwrap_or_else(|| panic!("{}", page.body));
    assert_eq!(shown, cli["exact_value"].as_str().unwrap());
    assert!(text_of(&page.body, "relays").unwrap().starts_with("3: relay-1, relay-2, relay-3"), "{}", page.body);
    assert_eq!(text_of(&page.body, "missing").unwrap(), "none");
    assert!(text_of(&page.body, "epsilon").unwrap().starts_with("0 (exact)"));
    assert!(text_of(&page.body, "elapsed").unwrap().ends_with(" ms"));

    // histogram: an SVG bar chart, counts as the CLI's
    let form = [
        ("csrf", csrf.as_str()),
        ("column", column),
        ("statistic", "histogram"),
        ("mode", "exact"),
        ("edges", "1000,10000,100000"),
    ];
    let page = run_query(&service, cookie, &form).await;
    let cli = cluster.answer("histogram", &["--exact", "--edges", "1000,10000,100000"], &population()).0.unwrap();
    assert!(page.body.contains("<svg class=\"chart\" id=\"histogram\" role=\"img\""), "{}", page.body);
    assert_eq!(page.body.matches("class=\"bar\"").count(), 4, "4 buckets");
    let counts: Vec<String> = cli["buckets"].as_array().unwrap().iter().map(|b| b["count"].to_string()).collect();
    let shown: Vec<String> =
        page.body.split("<td class=\"count\">").skip(1).map(|s| s.split('<').next().unwrap().to_string()).collect();
    assert_eq!(shown, counts);
    assert!(page.body.contains("values in the bucket (count)"), "y axis label");
}

/// A noisy answer with its uncertainty; a CDF from 9 quantiles.
async fn noisy_mean_and_cdf<S, B>(ctx: &Ctx<'_, S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (service, cluster, cookie, csrf, column) = (ctx.service, ctx.cluster, &ctx.cookie, &ctx.csrf, &ctx.column);
    // a noisy mean: ± standard deviation, 95% interval, epsilon spent and
    // sampled in the budget series
    let form = [
        ("csrf", csrf.as_str()),
        ("column", column),
        ("statistic", "mean"),
        ("mode", "dp"),
        ("epsilon", "0.5"),
        ("lo", "0"),
        ("hi", "3000000"),
    ];
    let page = run_query(&service, cookie, &form).await;
    let stddev: f64 = text_of(&page.body, "stddev").unwrap_or_else(|| panic!("{}", page.body)).parse().unwrap();
    assert!(stddev > 0.0);
    assert!(text_of(&page.body, "ci95").unwrap().contains(" to "), "{}", page.body);
    assert!(text_of(&page.body, "epsilon").unwrap().starts_with("0.5 "), "{}", page.body);
    assert!(text_of(&page.body, "exact-value").is_none(), "a noisy answer has no exact value");
    assert!(text_of(&page.body, "value").unwrap().contains(" ± "), "{}", page.body);
    let page = send(&service, get("/cluster", cookie)).await;
    assert_eq!(page.body.matches("class=\"remaining\">9.5<").count(), 2, "{}", page.body);
    assert!(page.body.contains("authority-1 (areas)"), "budget series per authority: {}", page.body);

    // a CDF: 9 quantile queries, one line chart
    let form = [("csrf", csrf.as_str()), ("column", column), ("statistic", "cdf"), ("mode", "exact")];
    let page = run_query(&service, cookie, &form).await;
    assert!(page.body.contains("<svg class=\"chart\" id=\"cdf\" role=\"img\""), "{}", page.body);
    assert_eq!(page.body.matches("<circle").count(), 9, "{}", page.body);
    assert_eq!(text_of(&page.body, "epsilon").unwrap(), "0", "exact quantiles spend nothing");
    let cli = cluster.answer("quantile", &["--exact", "--quantile", "0.5"], &population()).0.unwrap();
    let median_row = format!("<td>0.5</td><td>{}</td>", cli["exact_value"].as_str().unwrap());
    assert!(page.body.contains(&median_row), "{median_row} in {}", page.body);
}

/// A mistyped column, bad input.
async fn readable_errors<S, B>(ctx: &Ctx<'_, S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (service, cookie, csrf, column) = (ctx.service, &ctx.cookie, &ctx.csrf, &ctx.column);
    // a mistyped column: a readable error with "did you mean"
    let form = [
        ("csrf", csrf.as_str()),
        ("label1", "Populaton"),
        ("label2", "All usual residents"),
        ("label3", "2021"),
        ("statistic", "count"),
        ("mode", "exact"),
    ];
    let page = run_query(&service, cookie, &form).await;
    assert!(page.body.contains("role=\"alert\""), "{}", page.body);
    assert!(page.body.contains("Did you mean"), "{}", page.body);
    assert!(text_of(&page.body, "suggestions").is_some());
    assert!(page.body.contains("<code>Population / All usual residents / 2021</code>"), "{}", page.body);

    // bad input: refused with the CLI's message, the form refilled
    let form =
        [("csrf", csrf.as_str()), ("column", column), ("statistic", "median"), ("mode", "exact"), ("quantile", "0.5")];
    let page = send(&service, post("/query", cookie, &form)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("--quantile does not apply to median"), "{}", page.body);
    assert!(page.body.contains("value=\"0.5\""), "form refilled");
}

/// The history page, CSV and JSON exports of the 13 queries sent.
async fn history_and_exports<S, B>(ctx: &Ctx<'_, S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (service, cluster, cookie) = (ctx.service, ctx.cluster, &ctx.cookie);
    // history: the three queries sent, exported as CSV and JSON
    let page = send(&service, get("/history", cookie)).await;
    assert_eq!(page.body.matches("<a href=\"/jobs/").count(), 13, "{}", page.body);
    let page = send(&service, get("/history.csv", cookie)).await;
    assert!(page.headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(page.body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 13, "{}", page.body);
    let field = |row: &csv::StringRecord, key: &str| row[headers.iter().position(|h| h == key).unwrap()].to_string();
    assert_eq!(field(&rows[0], "statistic"), "median");
    assert_eq!(
        field(&rows[0], "exact_value"),
        cluster.answer("median", &["--exact"], &population()).0.unwrap()["exact_value"].as_str().unwrap()
    );
    assert_eq!(field(&rows[0], "column"), "Population / All usual residents / 2021");
    assert!(field(&rows[1], "value").contains("\"count\""), "histogram buckets in the CSV");
    assert_eq!(field(&rows[2], "epsilon"), "0.5");
    assert!(!field(&rows[2], "stddev").is_empty() && !field(&rows[2], "ci95_lo").is_empty());
    assert!(!field(&rows[12], "error").is_empty(), "the failed query's error");
    let page = send(&service, get("/history.json", cookie)).await;
    let json: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let queries = json["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 13);
    assert_eq!(queries[0]["answer"]["exact_value"], cli_median(cluster));
    assert_eq!(queries[1]["edges"], serde_json::json!(["1000", "10000", "100000"]));
    assert_eq!(queries[3]["quantile"], "0.1");
    assert!(queries[12]["answer"].is_null() && queries[12]["error"].is_string());
}

/// Unknown pages.
async fn not_found_pages<S, B>(ctx: &Ctx<'_, S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (service, cookie) = (ctx.service, &ctx.cookie);
    // unknown pages: a readable 404
    let page = send(&service, get("/no/such/page", cookie)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("There is no page at <code>/no/such/page</code>"), "{}", page.body);
    assert_security_headers(&page);
    let page = send(&service, get("/jobs/999", cookie)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

fn cli_median(cluster: &Cluster) -> serde_json::Value {
    cluster.answer("median", &["--exact"], &population()).0.unwrap()["exact_value"].clone()
}

async fn lock_history_is_empty<S, B>(service: &S, cookie: &str) -> bool
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    send(service, get("/history.json", cookie)).await.body.contains("\"queries\":[]")
}

/// A processor that is never reached.
struct Unreachable;

impl ProcessorLink for Unreachable {
    fn ask(&self, _: &ProcessorRequest) -> Result<ProcessorResponse, String> {
        Err("could not reach the processor processor at 127.0.0.1:9: connection refused".to_string())
    }
}

fn console_with(access: Access) -> Console {
    Console::with_link("alice".into(), ("processor".into(), "127.0.0.1:9".into()), Arc::new(Unreachable), access)
}

#[actix_web::test]
async fn an_unreachable_processor_gives_readable_pages() {
    let service = test::init_service(app(Data::new(console_with(Access::Local)))).await;
    let page = send(&service, TestRequest::get().uri("/cluster").to_request()).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(
        page.body.contains("role=\"alert\"") && page.body.contains("could not reach the processor"),
        "{}",
        page.body
    );
    // the query page still works: labels can be typed
    let page = send(&service, TestRequest::get().uri("/query").to_request()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Published columns unavailable"), "{}", page.body);
    let css = send(&service, TestRequest::get().uri("/static/console.css").to_request()).await;
    assert!(css.headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/css"));
}

/// A processor whose query runs until the test releases it, reporting
/// progress meanwhile.
struct Slow {
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl ProcessorLink for Slow {
    fn ask(&self, request: &ProcessorRequest) -> Result<ProcessorResponse, String> {
        match request {
            ProcessorRequest::Progress => Ok(ProcessorResponse::Progress(vec![QueryProgress {
                query_id: QueryId([7; 16]),
                statistic: Statistic::Median,
                rounds: 2,
                max_rounds: 5,
                elapsed_ms: 1234,
            }])),
            ProcessorRequest::Query { .. } => {
                let _ = self.release.lock().unwrap().recv_timeout(Duration::from_secs(30));
                Ok(ProcessorResponse::Error { message: "privacy budget exhausted".into() })
            }
            _ => Err("not in this test".into()),
        }
    }
}

#[actix_web::test]
async fn a_long_query_shows_its_rounds_while_the_console_stays_responsive() {
    let (release, wait) = std::sync::mpsc::channel();
    let link = Arc::new(Slow { release: std::sync::Mutex::new(wait) });
    let console = Console::with_link("alice".into(), ("processor".into(), "127.0.0.1:9".into()), link, Access::Local);
    let service = test::init_service(app(Data::new(console))).await;
    let page = send(&service, TestRequest::get().uri("/history").to_request()).await;
    let cookie = cookie_of(&page);
    let csrf = csrf_of(&send(&service, get("/query", &cookie)).await.body);
    let form = [("csrf", csrf.as_str()), ("label1", "Land"), ("statistic", "median"), ("mode", "exact")];
    let started = send(&service, post("/query", &cookie, &form)).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let job = started.headers.get(header::LOCATION).unwrap().to_str().unwrap().to_string();
    let page = send(&service, get(&job, &cookie)).await;
    assert!(page.body.contains("<meta http-equiv=\"refresh\" content=\"1\">"), "{}", page.body);
    assert!(page.body.contains("Round 2 of at most 5"), "{}", page.body);
    assert!(page.body.contains("<progress max=\"5\" value=\"2\""), "{}", page.body);
    // other pages answer while the query runs
    assert_eq!(send(&service, get("/history", &cookie)).await.status, StatusCode::OK);
    release.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = send(&service, get(&job, &cookie)).await;
        if !page.body.contains("Query running") || Instant::now() > deadline {
            break page;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!page.body.contains("http-equiv=\"refresh\""), "a finished job stops refreshing");
    assert!(page.body.contains("the processor refused the query: privacy budget exhausted"), "{}", page.body);
    assert!(!page.body.contains("Did you mean"), "not a column problem: {}", page.body);
}

#[actix_web::test]
async fn a_remote_console_needs_the_login_token() {
    let token = "00112233445566778899aabbccddeeff";
    let access = Access::Remote { token: Zeroizing::new(token.to_string()) };
    let service = test::init_service(app(Data::new(console_with(access)))).await;
    // every page sends a browser that has not logged in to /login
    let page = send(&service, TestRequest::get().uri("/history").to_request()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers.get(header::LOCATION).unwrap(), "/login");
    let cookie = cookie_of(&page);
    let page = send(&service, get("/history.csv", &cookie)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "exports too");
    let login = send(&service, get("/login", &cookie)).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(!login.body.contains(token), "the token is never in a page");
    let csrf = csrf_of(&login.body);
    // wrong token, and right token without CSRF: refused
    let page = send(&service, post("/login", &cookie, &[("csrf", &csrf), ("token", "0")])).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("wrong login token"));
    let page = send(&service, post("/login", &cookie, &[("token", token)])).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // right token: a new session cookie that opens the pages
    let page = send(&service, post("/login", &cookie, &[("csrf", &csrf), ("token", token)])).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let logged_in = cookie_of(&page);
    assert_ne!(logged_in, cookie);
    let page = send(&service, get("/history", &logged_in)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(send(&service, get("/history", &cookie)).await.status, StatusCode::SEE_OTHER, "the old id is void");
}

#[test]
fn a_non_loopback_listen_address_needs_allow_remote() {
    let out = std::process::Command::new(BIN)
        .args(["console", "--config", "/nonexistent/user.yaml", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: refusing to listen on 0.0.0.0:0"), "{stderr}");
    assert!(stderr.contains("pass --allow-remote"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
