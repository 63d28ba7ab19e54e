//! `lab8-crash`: kill a worker inside its critical section and compare what
//! each lock does about it. The experiment is [`race::crash::run_crash`].

use crate::fmt::{duration_ns, group};
use race::SyncMode;
use race::crash::{CrashReport, Outcome, crash_modes};
use std::io::Write;
use std::process::ExitCode;

/// Runs the crash experiment for each of `modes` and prints the comparison.
pub fn run(modes: &[SyncMode], workers: u32, iters: u64, json: bool) -> anyhow::Result<ExitCode> {
    if !json {
        println!(
            "lab8-crash: {workers} processes x {} increments; worker 0 takes the lock, loads the counter, and is killed with SIGKILL before it stores.",
            group(iters)
        );
        println!(
            "The others wait for the lock at most {} ms at a time, then check on the holder, so nobody can hang.\n",
            race::crash::WAIT_SLICE.as_millis()
        );
    }
    let mut reports = Vec::new();
    for &m in modes {
        let r = race::crash::run_crash(m, workers, iters)?;
        if json {
            let line = serde_json::to_string(&r)?;
            writeln!(std::io::stdout().lock(), "{line}")?;
        }
        reports.push(r);
    }
    if !json {
        print_table(&reports);
        print_notice(&reports);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--sync`'s help: the locks that can die holding, then `all`.
pub fn sync_help() -> String {
    let names: Vec<&str> = all_modes().into_iter().map(SyncMode::name).collect();
    format!("{} | all", names.join(" | "))
}

/// The modes for `--sync all`.
pub fn all_modes() -> Vec<SyncMode> {
    crash_modes()
}

fn outcome_text(r: &CrashReport) -> String {
    match r.outcome {
        Outcome::Recovered => match r.sync {
            SyncMode::Pthread => "recovered: EOWNERDEAD, made consistent".into(),
            _ => format!(
                "recovered: took over from dead tid {}",
                r.reported_holder.unwrap_or(0)
            ),
        },
        Outcome::WedgedDetected => format!(
            "wedged; detected: holder pid {} is dead",
            r.reported_holder.unwrap_or(0)
        ),
        Outcome::Hung => "HUNG: nobody noticed (would wait forever)".into(),
    }
}

fn print_table(reports: &[CrashReport]) {
    let w = SyncMode::name_width();
    println!(
        "{:<w$} {:<44} {:>10} {:>9} {:>20} {:>25}",
        "sync",
        "what the others experienced",
        "detected",
        "finished",
        "in flight",
        "counter (kept / actual)"
    );
    for r in reports {
        let detected = r.detect_ns.map_or("-".to_string(), duration_ns);
        println!(
            "{:<w$} {:<44} {:>10} {:>9} {:>20} {:>25}",
            r.sync.name(),
            outcome_text(r),
            detected,
            format!("{}/{}", r.survivors_finished, r.workers - 1),
            format!("lost (read {})", group(r.in_flight_loaded)),
            format!(
                "{} / {}{}",
                group(r.expected),
                group(r.actual),
                if r.consistent() { "" } else { " !" }
            ),
        );
    }
}

fn print_notice(reports: &[CrashReport]) {
    println!("\nWhat to notice:");
    println!(
        "- The increment in flight is always lost: the victim loaded the counter and died before storing. Every completed increment is kept (counter = kept)."
    );
    if reports.iter().any(|r| r.outcome == Outcome::Recovered) {
        println!(
            "- pthread (robust), futex and spin locks know their owner: the kernel's robust list (pthread) or the owner's TID in the lock word (futex, spin) lets the next locker take over and be told the owner died. The data it protected may be half-updated: here it is not, because the victim had not stored yet."
        );
    }
    if reports.iter().any(|r| r.sync == SyncMode::PthreadPlain) {
        println!(
            "- glibc's plain (non-robust) mutex records its holder's tid, but when the holder dies nothing happens: the next pthread_mutex_lock waits forever. Only the bounded wait (pthread_mutex_clocklock) plus that owner field turns it into a report. Robustness is what the pthread row pays for."
        );
    }
    if reports.iter().any(|r| r.outcome == Outcome::WedgedDetected) {
        println!(
            "- A semaphore has no owner: after the kill it stays at 0 forever. Only the bounded wait (sem_clockwait) plus the pid recorded in the region turns a silent hang into a report. Posting it again by hand ('repair') is unsafe in general: if the recorded holder were alive, two processes would be inside the critical section."
        );
    }
    println!(
        "- Without a bounded wait, every 'wedged' row would be a program that never ends. C programs using sem_wait() on a shared semaphore meet exactly this after a crash."
    );
}
