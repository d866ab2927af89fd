//! The console's web server (actix-web): routes, the session gate (a cookie
//! per browser; a remote console sends a browser that has not logged in to
//! the login page), the CSRF check on every POST, security headers on every
//! response, and handlers that run processor calls on blocking threads so
//! the server stays responsive. Input: HTTP requests from the user's
//! browser; output: pages from `console::pages`, CSV and JSON exports.

use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, DefaultHeaders, Next};
use actix_web::{web, App, FromRequest, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use maud::Markup;
use serde::Deserialize;

use super::error::ConsoleError;
use super::form::QueryForm;
use super::jobs;
use super::pages::{self, history::clock, query::QueryPage};
use super::security::{cookie_value, csrf_ok, session_cookie, tokens_equal, Access, Session, SESSION_COOKIE};
use super::state::{lock, published_columns, Console};

/// The stylesheet, served at /static/console.css (no CDN).
pub const STYLESHEET: &str = include_str!("static/console.css");

type Data = web::Data<Console>;

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Session, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.extensions().get::<Session>().cloned();
        ready(session.ok_or_else(|| actix_web::error::ErrorInternalServerError("no session")))
    }
}

fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(markup.into_string())
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// Runs a blocking processor call on a blocking thread.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    web::block(call).await.unwrap_or_else(|e| Err(format!("the console could not run the request: {e}")))
}

fn refused(console: &Console, message: &str) -> HttpResponse {
    html(StatusCode::FORBIDDEN, pages::error_page(&console.user, "Request refused", message))
}

const CSRF_REFUSAL: &str = "this form did not carry the console's CSRF token for your session (it may come from \
    another site, or the console was restarted); reload the page and submit the form again";

/// Resolves the session; a remote console's browser that has not logged in
/// goes to /login (but for the login page and the stylesheet).
async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(console) = req.app_data::<Data>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let header = req.headers().get(header::COOKIE).and_then(|v| v.to_str().ok());
    let session = console.session(header.and_then(|h| cookie_value(h, SESSION_COOKIE)));
    let open = req.path() == "/login" || req.path().starts_with("/static/");
    let mut response = if session.logged_in || open {
        req.extensions_mut().insert(session.clone());
        next.call(req).await?.map_into_boxed_body()
    } else {
        req.into_response(see_other("/login"))
    };
    if session.fresh && !response.headers().contains_key(header::SET_COOKIE) {
        if let Ok(value) = HeaderValue::from_str(&session_cookie(&session)) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

async fn index() -> HttpResponse {
    see_other("/query")
}

/// The query page, with the form refilled and an error after a refusal.
async fn render_query(console: Data, session: &Session, form: &QueryForm, error: Option<String>) -> HttpResponse {
    let asking = console.clone();
    let columns = blocking(move || asking.columns()).await.map(|relays| published_columns(&relays));
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = QueryPage { session, user: &console.user, columns, form, error };
    html(status, pages::query::page(&page))
}

async fn query_page(console: Data, session: Session) -> HttpResponse {
    render_query(console, &session, &QueryForm::default(), None).await
}

/// Starts the query in the background and sends the browser to its job page.
async fn query_post(console: Data, session: Session, form: web::Form<QueryForm>) -> HttpResponse {
    if !csrf_ok(&session, form.csrf.as_deref()) {
        return refused(&console, CSRF_REFUSAL);
    }
    let request = match form.job_request() {
        Ok(request) => request,
        Err(message) => return render_query(console, &session, &form, Some(message)).await,
    };
    match jobs::start(console.clone().into_inner(), request) {
        Ok(id) => see_other(&format!("/jobs/{id}")),
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::error_page(&console.user, "Query not started", &format!("could not start the query: {e}")),
        ),
    }
}

async fn job_page(console: Data, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let job = id.parse::<u64>().ok().and_then(|id| lock(&console.jobs).get(id).cloned());
    let Some(job) = job else { return not_found(console, req).await };
    let progress = match job.outcome {
        None => {
            let asking = console.clone();
            blocking(move || asking.progress()).await
        }
        Some(_) => Ok(Vec::new()),
    };
    html(StatusCode::OK, pages::answer::page(&console.user, &job, &progress))
}

async fn cluster_page(console: Data) -> HttpResponse {
    let asking = console.clone();
    let view = blocking(move || asking.cluster()).await;
    let status = if view.is_ok() { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
    let series = lock(&console.budget);
    html(status, pages::cluster::page(&console.user, &view, &series, &clock(console.started_unix)))
}

async fn history_page(console: Data) -> HttpResponse {
    html(StatusCode::OK, pages::history::page(&console.user, &lock(&console.history)))
}

async fn history_csv(console: Data) -> HttpResponse {
    match lock(&console.history).to_csv() {
        Ok(csv) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"crux-history.csv\""))
            .body(csv),
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::error_page(&console.user, "Export failed", &format!("could not write the CSV: {e}")),
        ),
    }
}

async fn history_json(console: Data) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"crux-history.json\""))
        .body(lock(&console.history).to_json().to_string())
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(STYLESHEET)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    token: String,
}

async fn login_page(session: Session) -> HttpResponse {
    if session.logged_in {
        return see_other("/query");
    }
    html(StatusCode::OK, pages::login(&session, false))
}

/// Checks the token (constant time); a new session id after login.
async fn login_post(console: Data, session: Session, form: web::Form<LoginForm>) -> HttpResponse {
    if !csrf_ok(&session, form.csrf.as_deref()) {
        return refused(&console, CSRF_REFUSAL);
    }
    let Access::Remote { token } = &console.access else { return see_other("/query") };
    if !tokens_equal(form.token.trim(), token) {
        return html(StatusCode::FORBIDDEN, pages::login(&session, true));
    }
    let fresh = lock(&console.sessions).log_in(&session.id);
    let mut response = see_other("/query");
    if let Ok(value) = HeaderValue::from_str(&session_cookie(&fresh)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn not_found(console: Data, req: HttpRequest) -> HttpResponse {
    html(StatusCode::NOT_FOUND, pages::not_found(&console.user, req.path()))
}

/// A form the server could not read: a readable page, not actix's text.
fn form_error(err: actix_web::error::UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    let user = req.app_data::<Data>().map(|c| c.user.clone()).unwrap_or_default();
    let page = pages::error_page(&user, "Bad request", &format!("the form could not be read: {err}"));
    actix_web::error::InternalError::from_response(err, html(StatusCode::BAD_REQUEST, page)).into()
}

/// The whole application (the binary's server and the tests use it).
pub fn app(
    console: Data,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let headers = super::security::SECURITY_HEADERS.iter().fold(DefaultHeaders::new(), |h, (k, v)| h.add((*k, *v)));
    App::new()
        .app_data(console)
        .app_data(web::FormConfig::default().limit(64 * 1024).error_handler(form_error))
        .wrap(from_fn(gate))
        .wrap(headers)
        .route("/", web::get().to(index))
        .route("/query", web::get().to(query_page))
        .route("/query", web::post().to(query_post))
        .route("/jobs/{id}", web::get().to(job_page))
        .route("/cluster", web::get().to(cluster_page))
        .route("/history", web::get().to(history_page))
        .route("/history.csv", web::get().to(history_csv))
        .route("/history.json", web::get().to(history_json))
        .route("/static/console.css", web::get().to(stylesheet))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login_post))
        .default_service(web::to(not_found))
}

/// Serves `console` on `listen` until SIGINT or SIGTERM; `announce` gets the
/// bound addresses once the socket listens (port 0 picks a free port).
pub fn serve(console: Console, listen: SocketAddr, announce: impl FnOnce(&[SocketAddr])) -> Result<(), ConsoleError> {
    let data = web::Data::from(Arc::new(console));
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || app(data.clone()))
            .workers(2)
            .bind(listen)
            .map_err(|source| ConsoleError::Bind { addr: listen, source })?;
        announce(&server.addrs());
        server.run().await?;
        Ok(())
    })
}
