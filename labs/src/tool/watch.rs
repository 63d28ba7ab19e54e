//! `shmlab watch [NAME]`: the `ps` report, redrawn in the terminal every
//! interval (ratatui on crossterm), so a student can keep it open in a
//! second terminal while a lab runs and see processes attach, hold the
//! lock, wait and vanish.
//!
//! Keys: `q`, Esc or Ctrl-C quit (exit 0); arrows, PgUp/PgDn, Home/End
//! scroll. The terminal is restored on every way out: those keys, an error
//! (restored before it is printed), a panic (ratatui's hook), and SIGTERM
//! or SIGHUP (through `shm::cleanup::on_signal`, just before the process
//! dies of it). Standard
//! output must be a terminal: otherwise `watch` says so in one line and
//! exits 2, pointing at `shmlab ps`, which prints the same report.
//!
//! What it draws is `ps`'s text, in which every string from outside is
//! escaped ([`crate::fmt::escape`]); the title's name and an error's text
//! are escaped here, so nothing drawn holds a control character.

use super::ps;
use anyhow::bail;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};
use shm::ShmName;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What the loop keeps between frames.
struct View {
    lines: Vec<String>,
    refresh: u64,
    scroll: u16,
    title: String,
}

/// Runs the view until a quit key.
pub fn watch(only: Option<&ShmName>, interval: Duration) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "shmlab watch draws in a terminal and standard output is not one; run `shmlab ps` (or `shmlab ps --json`) for the same report once"
        );
    }
    let mut terminal = ratatui::try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up the terminal for shmlab watch: {e}"))?;
    // `kill PID` or a closed terminal window: leave the alternate screen and
    // raw mode before dying of the signal.
    shm::cleanup::on_signal(ratatui::restore);
    let outcome = run(&mut terminal, only, interval);
    drop(terminal); // shows the cursor again
    ratatui::restore();
    shm::cleanup::clear_on_signal();
    outcome.map(|()| ExitCode::SUCCESS)
}

fn run(
    terminal: &mut ratatui::DefaultTerminal,
    only: Option<&ShmName>,
    interval: Duration,
) -> anyhow::Result<()> {
    let what = only.map_or_else(
        || shm::SHM_DIR.to_string(),
        |n| crate::fmt::escape_str(n.as_str()),
    );
    let mut view = View {
        lines: Vec::new(),
        refresh: 0,
        scroll: 0,
        title: String::new(),
    };
    loop {
        view.refresh += 1;
        view.lines = frame_lines(ps::collect_all(only), only.is_some(), &what);
        view.title = format!(
            " shmlab watch {what} | refresh {} every {} | q quits, arrows scroll ",
            view.refresh,
            crate::fmt::secs(interval)
        );
        terminal.draw(|f| draw(f, &view))?;
        let deadline = Instant::now() + interval;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !event::poll(left)? {
                break;
            }
            let page = terminal.size()?.height.saturating_sub(3).max(1);
            let max = (view.lines.len() as u16).saturating_sub(1);
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => match k.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(());
                    }
                    KeyCode::Down | KeyCode::Char('j') => view.scroll = (view.scroll + 1).min(max),
                    KeyCode::Up | KeyCode::Char('k') => view.scroll = view.scroll.saturating_sub(1),
                    KeyCode::PageDown | KeyCode::Char(' ') => {
                        view.scroll = view.scroll.saturating_add(page).min(max);
                    }
                    KeyCode::PageUp => view.scroll = view.scroll.saturating_sub(page),
                    KeyCode::Home => view.scroll = 0,
                    KeyCode::End => view.scroll = max,
                    _ => continue,
                },
                Event::Resize(..) => {}
                _ => continue,
            }
            terminal.draw(|f| draw(f, &view))?;
        }
    }
}

/// The lines of one frame: the report's (escaped by `ps`), a line while
/// the one object watched is absent, or the error (escaped: it may quote a
/// name).
fn frame_lines(report: anyhow::Result<ps::Report>, one: bool, what: &str) -> Vec<String> {
    match report {
        Ok(r) if r.objects.is_empty() && one => {
            vec![format!("{what} does not exist: waiting for it to appear")]
        }
        Ok(r) => r.lines(),
        Err(e) => {
            let e = format!("{e:#}");
            let e = if crate::fmt::has_control(&e) {
                crate::fmt::escape_str(&e)
            } else {
                e
            };
            vec![format!("error: {e}")]
        }
    }
}

/// How a report line is shown: object names bold, stale objects and dead
/// holders red, held locks yellow.
fn style(line: &str) -> Style {
    if line.starts_with('/') {
        Style::default().add_modifier(Modifier::BOLD)
    } else if line.contains("stale     yes") || line.contains("UNLINKED") {
        Style::default().fg(Color::Red)
    } else if line.contains(" zombie") || line.contains(" gone") || line.contains("wedged") {
        Style::default().fg(Color::LightRed)
    } else if line.starts_with("  lock ") && line.contains(": held") {
        Style::default().fg(Color::Yellow)
    } else {
        Style::default()
    }
}

fn draw(f: &mut ratatui::Frame<'_>, view: &View) {
    let lines: Vec<Line<'_>> = view
        .lines
        .iter()
        .map(|l| Line::styled(l.as_str(), style(l)))
        .collect();
    let p = Paragraph::new(lines)
        .block(Block::bordered().title(view.title.as_str()))
        .scroll((view.scroll, 0));
    f.render_widget(p, f.area());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::has_control;

    /// Finding 7 in `watch`: what reaches ratatui's cells holds no control
    /// character, whatever the report or the error quotes.
    #[test]
    fn frames_hold_no_control_character() {
        let err = frame_lines(Err(anyhow::anyhow!("cannot read /x\x1b[2J")), false, "");
        assert_eq!(err, ["error: cannot read /x\\x1b[2J"]);
        let what = crate::fmt::escape_str("/w\x1b[2J");
        let absent = frame_lines(
            Ok(ps::Report {
                objects: Vec::new(),
                processes_inspected: 0,
                processes_not_inspected: 0,
                not_inspected_pids: Vec::new(),
            }),
            true,
            &what,
        );
        assert_eq!(
            absent,
            ["/w\\x1b[2J does not exist: waiting for it to appear"]
        );
        let view = View {
            lines: err.into_iter().chain(absent).collect(),
            refresh: 1,
            scroll: 0,
            title: format!(" shmlab watch {what} "),
        };
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 6)).unwrap();
        t.draw(|f| draw(f, &view)).unwrap();
        let cells: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(!has_control(&cells), "{cells:?}");
        assert!(cells.contains("/w\\x1b[2J does not exist"), "{cells}");
    }
}
