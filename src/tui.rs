//! The live dashboard: the terminal guard, the panic hook and the UI loop.
//!
//! ```text
//! input thread (crossterm poll/read) ──▶ ┐
//! watch::Receiver<Arc<Snapshot>> ─────▶ ├─ UI loop: Action -> App::update -> view::render
//! tick (250 ms), shutdown signal ─────▶ │
//! answers (exports, traces) ──────────▶ ┘     └─ Effect: export (blocking pool) or a Control
//!                                                 to the aggregator (try_send, never waits)
//! ```
//!
//! The loop only reads the snapshot watch channel, so ingest never waits on the UI. It redraws
//! at once after keys (after draining every pending event), and at most four times a second for
//! new data. [`TerminalGuard`] owns raw mode and the alternate screen and gives them back on
//! every way out: normal return, error, panic (a chained panic hook), and the shutdown signal the
//! binary passes in for SIGINT/SIGTERM.
//!
//! - [`app`]: state and `update`; [`event`]: keys -> actions (and the key table);
//! - [`trace`]: the trace view's state and waterfall rows;
//! - [`view`]: pure drawing; [`theme`]: styles;
//! - [`sanitize`]: untrusted text; [`format`](mod@format): numbers and durations.

pub mod app;
pub mod event;
pub mod format;
pub mod sanitize;
pub mod theme;
pub mod trace;
pub mod view;

#[cfg(test)]
pub(crate) mod testing;

use std::future::Future;
use std::io::{IsTerminal, Stdout};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self as term_event, DisableMouseCapture, EnableMouseCapture, Event, MouseButton, MouseEventKind,
};
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::crossterm::{cursor, execute};
use tokio::sync::{mpsc, watch};

use self::app::{Action, App, Effect, UiState};
use crate::control::Control;
use crate::snapshot::Snapshot;

/// Default least time between two redraws caused by new data (4 frames per second; `--fps`).
pub const FRAME: Duration = Duration::from_millis(250);
/// How long the input thread waits for an event before checking whether it should stop.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// What the dashboard needs besides the snapshots.
#[derive(Debug, Clone)]
pub struct TuiConfig {
    /// Where OTLP/gRPC is served (shown so the user can copy it).
    pub grpc_addr: SocketAddr,
    /// Where OTLP/HTTP is served.
    pub http_addr: SocketAddr,
    /// Where `e` writes snapshot reports.
    pub snapshot_dir: PathBuf,
    /// Requests to the aggregator (traces, window, clear); `None` for a saved report, where
    /// the keys that need a live pipeline say so.
    pub control: Option<mpsc::Sender<Control>>,
    /// Least time between two redraws (`--fps`).
    pub frame: Duration,
}

/// Resolves on SIGINT or SIGTERM (never, if they cannot be listened for): the shutdown future
/// for the subcommands that run the dashboard (`open`, `demo`).
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Why the dashboard cannot start here.
pub fn check_terminal() -> Result<(), String> {
    // The dashboard draws on stdout; stderr may go to a file (`apmtop 2>apmtop.log`).
    if !std::io::stdout().is_terminal() {
        return Err("the dashboard needs a terminal on stdout; use --headless for scripts and CI".into());
    }
    Ok(())
}

/// Runs the dashboard until the user quits or `shutdown` resolves. The terminal is restored
/// before this returns, whatever the outcome.
pub async fn run(
    config: TuiConfig,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let mut ui = UiState::new(config.grpc_addr, config.http_addr, config.snapshot_dir);
    ui.theme = theme::Theme::from_env();
    ui.live = config.control.is_some();
    let effects_to = EffectRunner { control: config.control };
    let first = Arc::clone(&snapshots.borrow_and_update());
    let mut app = App::new(ui, first);
    let size = guard.terminal.size().context("reading the terminal size")?;
    app.update(Action::Resize(size.height));

    let mut input = InputThread::spawn();
    let (effects_done, mut effects) = mpsc::channel::<Action>(8);
    let effects_done = (effects_to, effects_done);
    let started = Instant::now();
    let mut tick = tokio::time::interval(config.frame);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut snapshots_open = true;
    let mut data_dirty = false;
    let mut shown_uptime = 0;
    tokio::pin!(shutdown);

    guard.draw(&app)?;
    loop {
        let mut redraw_now = false;
        let mut actions = Vec::new();
        tokio::select! {
            () = &mut shutdown => break,
            event = input.events.recv() => {
                let event = event.context("the terminal input closed")?;
                // Drain whatever else is pending, then draw once.
                let mut pending = vec![event];
                while let Ok(more) = input.events.try_recv() {
                    pending.push(more);
                }
                let events = pending.into_iter().collect::<std::io::Result<Vec<Event>>>();
                for effect in handle_events(&mut app, events.context("reading terminal input")?) {
                    effects_done.0.spawn(effect, &effects_done.1);
                }
                redraw_now = true;
            }
            changed = snapshots.changed(), if snapshots_open => match changed {
                Ok(()) => {
                    actions.push(Action::Snapshot(Arc::clone(&snapshots.borrow_and_update())));
                    data_dirty = true;
                }
                Err(_) => snapshots_open = false,
            },
            Some(done) = effects.recv() => {
                actions.push(done);
                redraw_now = true;
            }
            _ = tick.tick() => {
                app.ui.uptime = started.elapsed();
                let seconds = app.ui.uptime.as_secs();
                if seconds != shown_uptime {
                    shown_uptime = seconds;
                    data_dirty = true;
                }
                if data_dirty {
                    redraw_now = true;
                }
            }
        }
        for action in actions {
            apply(&mut app, action, &effects_done);
        }
        if app.should_quit() {
            break;
        }
        if PANICKED.load(Ordering::SeqCst) {
            // The hook has given the terminal back and printed the message: stop drawing.
            anyhow::bail!("an internal task panicked (see the message above)");
        }
        if redraw_now {
            app.ui.uptime = started.elapsed();
            guard.draw(&app)?;
            data_dirty = false;
        }
    }
    input.stop();
    guard.restore();
    Ok(())
}

/// Applies terminal events in order. Each key is mapped in the state the previous one left (`/`
/// starts the filter that the next letters go to), so a burst of keys read at once behaves like
/// the same keys typed slowly. Returns the effects to run.
fn handle_events(app: &mut App, events: Vec<Event>) -> Vec<Effect> {
    let mut effects = Vec::new();
    for event in events {
        let action = match event {
            Event::Key(key) => event::handle_key(&key, &app.ui),
            Event::Resize(_, rows) => Some(Action::Resize(rows)),
            Event::Mouse(mouse) => match mouse.kind {
                MouseEventKind::ScrollUp => Some(Action::Up),
                MouseEventKind::ScrollDown => Some(Action::Down),
                MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(mouse.row)),
                _ => None,
            },
            _ => None,
        };
        effects.extend(action.and_then(|action| app.update(action)));
    }
    effects
}

/// Applies `action`; runs the effect it asks for, if any.
fn apply(app: &mut App, action: Action, done: &(EffectRunner, mpsc::Sender<Action>)) {
    if let Some(effect) = app.update(action) {
        done.0.spawn(effect, &done.1);
    }
}

/// Runs effects without ever blocking the UI loop.
struct EffectRunner {
    control: Option<mpsc::Sender<Control>>,
}

impl EffectRunner {
    /// Runs `effect`: an export on the blocking pool, a request to the aggregator with
    /// `try_send` (a trace's answer is awaited on its own task). Outcomes come back on `done`.
    fn spawn(&self, effect: Effect, done: &mpsc::Sender<Action>) {
        let done = done.clone();
        let control = match effect {
            Effect::Export { .. } => {
                tokio::task::spawn_blocking(move || {
                    if let Some(outcome) = effect.run() {
                        let _ = done.blocking_send(outcome);
                    }
                });
                return;
            }
            Effect::FetchTrace(trace_id) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let hex = trace_id.to_string();
                tokio::spawn(async move {
                    // A dropped reply (aggregator gone or busy) reads as "not kept".
                    let record = answer.await.ok().flatten();
                    let _ = done.send(Action::TraceLoaded(hex, record)).await;
                });
                Control::Trace { trace_id, reply }
            }
            Effect::SetWindow(window) => Control::SetWindow(window),
            Effect::Clear => Control::Clear,
        };
        if let Some(sender) = &self.control {
            // A full channel drops the request (and, for a trace, its reply: "not kept").
            let _ = sender.try_send(control);
        }
    }
}

/// Whether the terminal is currently in raw mode and on the alternate screen (because of us).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);
/// Set by the panic hook: a task panicked (perhaps not the UI's), so the UI must stop drawing on
/// a terminal that has already been given back.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Raw mode and the alternate screen, given back in `Drop`.
pub struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen; installs the panic hook (once per process).
    pub fn enter() -> anyhow::Result<Self> {
        install_panic_hook();
        TERMINAL_TAKEN.store(true, Ordering::SeqCst);
        let entered = (|| {
            enable_raw_mode()?;
            execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture, cursor::Hide)?;
            Terminal::new(CrosstermBackend::new(std::io::stdout()))
        })();
        match entered {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(error) => {
                restore_terminal();
                Err(error).context("cannot set up the terminal")
            }
        }
    }

    fn draw(&mut self, app: &App) -> anyhow::Result<()> {
        self.terminal.draw(|frame| view::render(frame, app.snapshot(), &app.ui)).context("drawing the dashboard")?;
        Ok(())
    }

    /// Gives the terminal back now (also done on drop; doing it twice is harmless).
    pub fn restore(&mut self) {
        restore_terminal();
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Leaves raw mode (first, so a later failure still leaves a usable shell), then the alternate
/// screen, and shows the cursor. Idempotent, never panics, does nothing if we never took the
/// terminal.
pub fn restore_terminal() {
    if !TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
}

/// A panic hook that restores the terminal, then runs the hook that was there before (so the
/// message is printed on a normal screen).
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            restore_terminal();
            previous(info);
        }));
    });
}

/// Reads terminal events on a plain thread (crossterm's reads block) and forwards them.
struct InputThread {
    events: mpsc::Receiver<std::io::Result<Event>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InputThread {
    fn spawn() -> Self {
        let (sender, events) = mpsc::channel(256);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("apmtop-input".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    let event = match term_event::poll(INPUT_POLL) {
                        Ok(false) => continue,
                        Ok(true) => term_event::read(),
                        Err(error) => Err(error),
                    };
                    let failed = event.is_err();
                    if sender.blocking_send(event).is_err() || failed {
                        return;
                    }
                }
            })
            .ok();
        InputThread { events, stop, thread }
    }

    /// Asks the thread to stop and waits for it (at most one poll interval).
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.events.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InputThread {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::tui::testing::{sample_snapshot, sample_ui};

    #[test]
    fn a_burst_of_keys_is_handled_like_slow_typing() {
        let mut app = App::new(sample_ui(), Arc::new(sample_snapshot()));
        let keys = "/books\r\r";
        let events = keys
            .chars()
            .map(|c| {
                let code = if c == '\r' { KeyCode::Enter } else { KeyCode::Char(c) };
                Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
            })
            .collect();
        let effects = handle_events(&mut app, events);
        assert!(effects.is_empty());
        assert_eq!(app.ui.filter, "books");
        assert!(!app.ui.filtering);
        assert!(app.ui.detail.as_ref().is_some_and(|d| d.route == "/api/books"));
    }

    #[test]
    fn export_from_a_burst_is_returned_as_an_effect() {
        let mut app = App::new(sample_ui(), Arc::new(sample_snapshot()));
        let events = vec![Event::Key(KeyEvent::new(KeyCode::Char('e'), KeyModifiers::NONE)), Event::Resize(80, 30)];
        let effects = handle_events(&mut app, events);
        assert!(matches!(effects.as_slice(), [Effect::Export { .. }]));
        assert_eq!(app.ui.page_rows, 22);
    }

    #[test]
    fn the_mouse_wheel_moves_the_selection_and_a_click_selects() {
        use ratatui::crossterm::event::MouseEvent;
        let mut app = App::new(sample_ui(), Arc::new(sample_snapshot()));
        app.update(Action::Resize(24));
        let mouse = |kind, row| Event::Mouse(MouseEvent { kind, column: 10, row, modifiers: KeyModifiers::NONE });
        let rows = |app: &App| app::endpoint_rows(app.snapshot(), &app.ui).iter().map(|e| e.route.clone()).collect();
        let routes: Vec<String> = rows(&app);
        let selected = |app: &App| {
            let keys: Vec<app::EndpointId> =
                app::endpoint_rows(app.snapshot(), &app.ui).iter().map(|e| app::EndpointId::of(e)).collect();
            keys[app.ui.endpoints.resolve(&keys).expect("a selection")].route.clone()
        };
        handle_events(&mut app, vec![mouse(MouseEventKind::ScrollDown, 5), mouse(MouseEventKind::ScrollDown, 5)]);
        assert_eq!(selected(&app), routes[2]);
        handle_events(&mut app, vec![mouse(MouseEventKind::ScrollUp, 5)]);
        assert_eq!(selected(&app), routes[1]);
        let (first, _) = view::table_rows_at(app::Tab::Endpoints, 24 - view::CHROME_ROWS);
        handle_events(&mut app, vec![mouse(MouseEventKind::Down(MouseButton::Left), first + 3)]);
        assert_eq!(selected(&app), routes[3]);
    }

    #[test]
    fn restoring_an_untaken_terminal_does_nothing() {
        restore_terminal();
        restore_terminal();
        assert!(!TERMINAL_TAKEN.load(Ordering::SeqCst));
    }
}
