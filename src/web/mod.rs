//! `streams ui`: the repository's runs as a local web page, live while a run goes on.
//!
//! The server (axum on the tokio runtime) listens on 127.0.0.1 only, on a free port unless one
//! is given, behind a random token ([`auth`]). The page is built into the binary ([`assets`]):
//! it loads the run once (`GET /api/run`, the document `ops::ui::page` gathers), then follows
//! it through server-sent events (`GET /events`, [`live`]) carrying only what changed; a
//! stream's diff and log are fetched when the person opens the stream. The graph and timeline
//! are the SVG that report.html inlines (`report::svg`). What the page does to a run goes
//! through the `streams` command itself ([`actions`]).
//!
//! Nothing from a run reaches the page as markup: the JSON carries text, the page's script
//! puts it in with `textContent`, and the SVG escapes it (`report::html::escape`).
//!
//! What later stages fill in (each shows only when present): a stream's cost from the ledger
//! (`report::page::StreamPage::cost`), streams parked on a conflict (one entry each in
//! `RunPage::conflicts`, and the word `parked`, already coloured and grouped under "needs you")
//! and a resolver's proposal (`ConflictPage::proposal`).

pub mod actions;
mod assets;
pub mod auth;
pub mod live;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::state::{RunDir, RunState, StateDir};
use live::{Follow, Live};

/// How `streams ui` was asked to serve.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// 0: any free port.
    pub port: u16,
    /// Show this run only (`--run ID`), not whichever is current.
    pub run: Option<String>,
    /// Show this plan's runs only (`--plan NAME`): its last, then each new one.
    pub plan: Option<String>,
}

/// The server's shared state.
struct App {
    repo: Repo,
    state_dir: StateDir,
    follow: Follow,
    token: String,
    tx: broadcast::Sender<Live>,
    /// Set when the server stops: open event streams end, so stopping does not wait for
    /// pages to close.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The `streams` binary the actions run (this one).
    exe: PathBuf,
}

/// The address a person opens: the page, with the token for its first load.
pub fn url(port: u16, token: &str) -> String {
    format!("http://127.0.0.1:{port}/?token={token}")
}

/// Serves until Ctrl-C or SIGTERM. `ready` gets the address once the server listens.
pub fn serve(repo: Repo, options: Options, ready: impl FnOnce(&str)) -> Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", options.port)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::usage_with_hint(
                format!("port {} on 127.0.0.1 is taken", options.port),
                "leave out --port to get a free one",
            )
        } else {
            Error::io(format!("could not listen on 127.0.0.1:{}", options.port), e)
        }
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("could not read the address listened on", e))?
        .port();
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("could not set up the listening socket", e))?;
    let token = auth::new_token().map_err(|e| Error::io("could not make a random token", e))?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("could not find the streams binary to run actions with", e))?;
    let (tx, _) = broadcast::channel(1024);
    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let app = Arc::new(App {
        stopping,
        state_dir: StateDir::new(repo.common_dir()),
        repo,
        follow: match (options.run, options.plan) {
            (Some(run), _) => Follow::Fixed(run),
            (None, Some(plan)) => Follow::Plan(plan),
            (None, None) => Follow::Current,
        },
        token: token.clone(),
        tx,
        exe,
    });
    let gate = auth::Gate {
        token: token.clone(),
        port,
    };
    let router = axum::Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/api/run", get(run_doc))
        .route("/api/stream/{name}", get(stream_doc))
        .route("/api/stream/{name}/diff", get(stream_diff))
        .route("/api/stream/{name}/log", get(stream_log))
        .route("/api/journal", get(journal))
        .route("/graph.svg", get(graph_svg))
        .route("/timeline.svg", get(timeline_svg))
        .route("/events", get(events))
        .route("/api/action", post(action))
        .layer(axum::middleware::from_fn_with_state(gate, auth::guard))
        .with_state(app.clone());
    crate::ops::session::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::io("could not set up the listening socket", e))?;
        tokio::spawn(live::watch(
            app.state_dir.clone(),
            app.follow.clone(),
            app.tx.clone(),
        ));
        // Listened for before the address is printed: a SIGTERM or Ctrl-C that comes as soon
        // as the server answers must stop it cleanly, not kill it by the default disposition
        // (registering inside the shutdown future left that window open until it was polled).
        let signals = StopSignals::listen();
        ready(&url(port, &token));
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                signals.stopped().await;
                let _ = stop_tx.send(true);
            })
            .await
            .map_err(|e| Error::io("the web server stopped", e))
    })
}

/// Ctrl-C or SIGTERM, listened for from the moment it is made.
struct StopSignals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn stopped(mut self) {
        async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(self.interrupt.as_mut()) => {}
            _ = recv(self.terminate.as_mut()) => {}
        }
    }
}

type Shared = State<Arc<App>>;

/// A JSON error the page shows as it is.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// The run the page shows and its state, or why there is none.
fn load(app: &App) -> std::result::Result<(RunDir, RunState), Response> {
    let Some(id) = app.follow.run_id(&app.state_dir) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "no streams run in this repository yet: start one with `streams run`; this page shows it as soon as it starts",
        ));
    };
    let dir = app.state_dir.run_dir(&id);
    dir.load()
        .map(|state| (dir, state))
        .map_err(|e| error(StatusCode::NOT_FOUND, e.to_string()))
}

/// Runs blocking work (git, files) off the server's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, Response> + Send + 'static,
) -> std::result::Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())))
}

async fn index(State(app): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        assets::index(&app.token),
    )
        .into_response()
}

async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    match assets::get(&name) {
        Some((mime, body)) => ([(header::CONTENT_TYPE, mime)], body).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no asset {name}")),
    }
}

async fn run_doc(State(app): Shared) -> Response {
    blocking(move || {
        let (dir, state) = load(&app)?;
        let redactor = crate::ops::ui::redactor(&dir, &state);
        crate::ops::ui::page(&app.repo, &dir, &state, &redactor, false)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await
    .map_or_else(|e| e, |page| Json(page).into_response())
}

async fn stream_doc(State(app): Shared, UrlPath(name): UrlPath<String>) -> Response {
    blocking(move || {
        let (dir, state) = load(&app)?;
        let redactor = crate::ops::ui::redactor(&dir, &state);
        crate::ops::ui::stream(&app.repo, &dir, &state, &name, &redactor)
            .map_err(|e| error(StatusCode::NOT_FOUND, e.to_string()))
    })
    .await
    .map_or_else(|e| e, |page| Json(page).into_response())
}

async fn stream_diff(State(app): Shared, UrlPath(name): UrlPath<String>) -> Response {
    blocking(move || {
        let (_, state) = load(&app)?;
        crate::ops::show::find_stream(&state, &name)
            .map_err(|e| error(StatusCode::NOT_FOUND, e.to_string()))?;
        crate::ops::ui::diff(&app.repo, &state, &name)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await
    .map_or_else(|e| e, |diff| Json(diff).into_response())
}

#[derive(serde::Deserialize)]
struct LogQuery {
    /// 1-based; default: the running task, else the last that wrote a log.
    task: Option<usize>,
}

/// Lines of a log the page gets when a stream is opened.
const LOG_PAGE_LINES: usize = 500;

async fn stream_log(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<LogQuery>,
) -> Response {
    blocking(move || {
        let (dir, state) = load(&app)?;
        let log = crate::ops::logs::task_log(&dir, &state, &name, query.task)
            .map_err(|e| error(StatusCode::NOT_FOUND, e.to_string()))?;
        let redactor = crate::ops::ui::redactor(&dir, &state);
        // Read the length first: lines written meanwhile come again as events, never lost.
        let end = std::fs::metadata(&log.path).map_or(0, |m| m.len());
        let lines = crate::ops::ui::tail(&log.path, LOG_PAGE_LINES, &redactor);
        Ok(serde_json::json!({
            "stream": log.stream,
            "task": log.task + 1,
            "tasks": state.stream_by_name(&name).map_or(0, |(_, s)| s.tasks.len()),
            "lines": lines,
            "end": end,
        }))
    })
    .await
    .map_or_else(|e| e, |doc| Json(doc).into_response())
}

/// Journal entries the page's activity list starts with; later ones come as events.
const JOURNAL_LINES: usize = 200;

async fn journal(State(app): Shared) -> Response {
    blocking(move || {
        let (dir, _) = load(&app)?;
        let text = std::fs::read_to_string(dir.journal_path()).unwrap_or_default();
        let lines: Vec<Live> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<crate::state::journal::Line>(l).ok())
            .filter_map(|l| {
                Some(Live::Journal {
                    at: l.at,
                    entry: serde_json::to_value(&l.entry).ok()?,
                })
            })
            .collect();
        let skip = lines.len().saturating_sub(JOURNAL_LINES);
        Ok(lines.into_iter().skip(skip).collect::<Vec<_>>())
    })
    .await
    .map_or_else(|e| e, |lines| Json(lines).into_response())
}

fn svg_response(svg: String) -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}

async fn graph_svg(State(app): Shared) -> Response {
    blocking(move || load(&app).map(|(_, state)| crate::report::svg::graph(&state)))
        .await
        .map_or_else(|e| e, svg_response)
}

async fn timeline_svg(State(app): Shared) -> Response {
    blocking(move || {
        load(&app).map(|(_, state)| {
            crate::report::svg::timeline(&state, crate::state::now_ms()).unwrap_or_else(|| {
                r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="1" height="1"></svg>"#.to_string()
            })
        })
    })
    .await
    .map_or_else(|e| e, svg_response)
}

async fn events(
    State(app): Shared,
) -> Sse<impl futures_util::Stream<Item = std::result::Result<Event, std::convert::Infallible>>> {
    let rx = app.tx.subscribe();
    let stopping = app.stopping.clone();
    let stream =
        futures_util::stream::unfold((rx, stopping), |(mut rx, mut stopping)| async move {
            let received = tokio::select! {
                received = rx.recv() => received,
                _ = stopping.wait_for(|stop| *stop) => return None,
            };
            let live = match received {
                Ok(live) => live,
                Err(broadcast::error::RecvError::Lagged(_)) => Live::Resync,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let event = Event::default()
                .event(live.name())
                .json_data(&live)
                .unwrap_or_else(|_| Event::default().event("resync").data("{}"));
            Some((Ok(event), (rx, stopping)))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn action(State(app): Shared, Json(request): Json<actions::Request>) -> Response {
    let loaded = {
        let app = app.clone();
        blocking(move || load(&app)).await
    };
    let (dir, state) = match loaded {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let names: Vec<String> = state.streams.iter().map(|s| s.name.clone()).collect();
    if let Err(why) = actions::validate(&request, &names) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let redactor = Arc::new(crate::ops::ui::redactor(&dir, &state));
    match actions::run(
        &app.exe,
        &state.repo_root,
        &app.state_dir,
        &request,
        redactor,
        app.tx.clone(),
    )
    .await
    {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not start streams: {e}"),
        ),
    }
}
