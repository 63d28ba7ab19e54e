//! `shmlab ps`, `watch` and the staleness `ls`/`clean` share, against real
//! processes: each fact `ps --json` reports is checked at each step as
//! processes map a region, hold its lock, wait on it and die.
//!
//! The processes are this test binary run again with
//! `SHMLAB_PS_HELPER=<role>:<lock>:<name>` (see [`helper_process`]): a
//! creator that keeps its region, a mapper, a holder and a waiter. They
//! print `PS <event> <pid> <tid>` lines and obey `unlock` on stdin; closing
//! their stdin ends them. Every waiting loop is bounded, and no assertion
//! is about time.

mod common;
use common::*;
use race::mode::{LocalLock, ModeVisitor};
use race::shared::{ByLock, RaceShared};
use serde_json::Value;
use shm::lock::{Lock, RawLockTimed};
use shm::process::Liveness;
use shm::{Region, RegionOptions, ShmName};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const HELPER_ENV: &str = "SHMLAB_PS_HELPER";

/// Tests that run the global `shmlab clean` or leave a stale object for it
/// take this lock, so one test's clean cannot eat another's fixture.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// The helper processes.

fn say(event: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "PS {event} {} {}", std::process::id(), shm::gettid()).unwrap();
    out.flush().unwrap();
}

/// The next line of stdin, `None` at EOF.
fn next_command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

struct Role<'a> {
    what: &'a str,
    name: ShmName,
}

impl ModeVisitor for Role<'_> {
    type Output = ();
    fn unsynchronised(self) {
        unreachable!("helpers use region locks")
    }
    fn fetch_add(self) {
        unreachable!("helpers use region locks")
    }
    fn region_lock<L: RawLockTimed + 'static>(self) {
        act::<L>(self.what, &self.name)
    }
    fn local_lock<M: LocalLock>(self) {
        unreachable!("helpers use region locks")
    }
}

fn act<L: RawLockTimed + 'static>(what: &str, name: &ShmName) {
    let opts = RegionOptions::default();
    match what {
        "create" => {
            let mut r = Region::<RaceShared<ByLock<L>>>::create(name, &opts, 0).unwrap();
            r.keep();
            say("ready");
            while next_command().is_some() {}
        }
        "map" => {
            let _r = Region::<RaceShared<ByLock<L>>>::open(name, &opts).unwrap();
            say("mapped");
            while next_command().is_some() {}
        }
        "hold" | "wait" => {
            let r = Region::<RaceShared<ByLock<L>>>::open(name, &opts).unwrap();
            let lock = Lock::attach(&r.lock.0).unwrap();
            if what == "wait" {
                say("waiting");
            }
            let mut guard = Some(lock.lock().unwrap());
            say(if what == "hold" { "held" } else { "got" });
            while let Some(cmd) = next_command() {
                if cmd == "unlock" && guard.take().is_some() {
                    say("released");
                }
            }
            std::process::exit(0); // holding it, if never told to unlock
        }
        other => panic!("unknown helper role {other}"),
    }
    std::process::exit(0);
}

/// Not a test: the body of the helper processes, run when the test binary
/// is started again with `SHMLAB_PS_HELPER` set (and a no-op otherwise).
#[test]
fn helper_process() {
    let Ok(role) = std::env::var(HELPER_ENV) else {
        return;
    };
    let mut parts = role.splitn(3, ':');
    let (what, lock, name) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mode = race::SyncMode::parse(lock).unwrap();
    mode.visit(Role {
        what,
        name: ShmName::parse(name).unwrap(),
    });
}

/// A helper process and its `PS ...` lines.
struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    reaped: bool,
}

impl Helper {
    fn spawn(what: &str, lock: &str, name: &ShmName) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "helper_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, format!("{what}:{lock}:{name}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                // The harness may have printed `test helper_process ... `
                // on the same line.
                if let Some(at) = l.find("PS ")
                    && tx.send(l[at + 3..].to_string()).is_err()
                {
                    break;
                }
            }
        });
        Helper {
            child,
            stdin,
            lines,
            reaped: false,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for `PS <event> <pid> <tid>`; returns the tid.
    fn expect(&self, event: &str) -> i32 {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("helper {} never said {event}", self.pid()));
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], event, "helper {} said {line}", self.pid());
        assert_eq!(f[1].parse::<i32>().unwrap(), self.pid());
        f[2].parse().unwrap()
    }

    fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes its stdin (it exits) without reaping it: it stays a zombie
    /// until [`reap`](Self::reap).
    fn end_unreaped(&mut self) {
        self.stdin = None;
        let pid = self.pid();
        until(&format!("{pid} to become a zombie"), || {
            (shm::process::liveness(pid, 0) == Liveness::Zombie).then_some(())
        });
    }

    /// SIGKILL, not reaped: a zombie.
    fn kill_unreaped(&mut self) {
        self.child.kill().unwrap();
        let pid = self.pid();
        until(&format!("{pid} to become a zombie"), || {
            (shm::process::liveness(pid, 0) == Liveness::Zombie).then_some(())
        });
    }

    fn reap(&mut self) {
        self.stdin = None;
        self.child.wait().unwrap();
        self.reaped = true;
    }

    fn comm(&self) -> String {
        shm::users::process_info(self.pid()).unwrap().comm
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` until it answers, for at most 30 seconds (a bound, not a
/// measurement: it only decides when to give up).
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// Reading the report.

/// `shmlab ps --json NAME`'s one object.
fn ps(name: &ShmName) -> Value {
    let r = run(SHMLAB, &["ps", "--json", name.as_str()]);
    r.expect_code(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let objects = v["objects"].as_array().unwrap();
    let mine: Vec<&Value> = objects
        .iter()
        .filter(|o| o["name"] == name.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{v:#}");
    mine[0].clone()
}

fn user_pids(o: &Value) -> Vec<i64> {
    o["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["pid"].as_i64().unwrap())
        .collect()
}

fn lock(o: &Value) -> &Value {
    let locks = o["region"]["locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1, "{o:#}");
    &locks[0]
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// The tests.

/// A futex region through its whole life: the creator and a mapper appear,
/// a holder holds, a waiter sets the waiters flag, the lock passes to the
/// waiter, a holder dies holding it, the creator dies while a mapper
/// remains (not stale, `clean` leaves it and says why), the mapper leaves
/// (a zombie creator and no users: stale, `clean` removes it).
#[test]
fn ps_follows_a_futex_region_through_its_life() {
    let _s = serial();
    let (_guard, name) = Unlink::new("ps-futex");
    let mut creator = Helper::spawn("create", "futex", &name);
    creator.expect("ready");
    let cpid = creator.pid() as i64;

    let o = ps(&name);
    assert_eq!(o["region"]["type"], "race/futex");
    assert_eq!(o["region"]["state"], "ready");
    assert_eq!(o["creator"]["pid"], cpid);
    assert_eq!(o["creator"]["liveness"], "alive");
    assert_eq!(o["creator"]["comm"], creator.comm());
    assert_eq!(user_pids(&o), vec![cpid]);
    assert_eq!(o["users"][0]["mapped"], true);
    assert_eq!(o["users"][0]["comm"], creator.comm());
    assert_eq!(lock(&o)["kind"], "futex");
    assert_eq!(lock(&o)["state"], "free");
    assert!(lock(&o)["holder"].is_null());
    assert_eq!(
        lock(&o)["waiters"],
        serde_json::json!({"recorded": "flag", "any": false})
    );
    assert_eq!(o["stale"], false);

    // A mapper appears.
    let mut mapper = Helper::spawn("map", "futex", &name);
    mapper.expect("mapped");
    let mpid = mapper.pid() as i64;
    assert_eq!(sorted(user_pids(&ps(&name))), sorted(vec![cpid, mpid]));

    // A holder: its tid (the helper's test thread) and its process.
    let mut holder = Helper::spawn("hold", "futex", &name);
    let htid = holder.expect("held");
    let o = ps(&name);
    let l = lock(&o);
    assert_eq!(l["state"], "held");
    assert_eq!(l["holder"]["id"], htid);
    assert_eq!(l["holder"]["pid"], holder.pid());
    assert_eq!(l["holder"]["liveness"], "alive");
    assert_eq!(l["holder"]["dead"], false);
    assert_eq!(user_pids(&o).len(), 3);

    // A waiter: the futex word records that someone waits, not how many.
    let mut waiter = Helper::spawn("wait", "futex", &name);
    let wtid = waiter.expect("waiting");
    let o = until("the waiters flag", || {
        let o = ps(&name);
        (lock(&o)["waiters"]["any"] == true).then_some(o)
    });
    assert_eq!(lock(&o)["holder"]["id"], htid, "the holder is unchanged");
    assert_eq!(lock(&o)["waiters"]["recorded"], "flag");

    // The holder unlocks: the waiter holds it.
    holder.send("unlock");
    holder.expect("released");
    assert_eq!(waiter.expect("got"), wtid);
    let o = ps(&name);
    assert_eq!(lock(&o)["holder"]["id"], wtid);
    assert_eq!(lock(&o)["holder"]["pid"], waiter.pid());
    waiter.send("unlock");
    waiter.expect("released");
    assert_eq!(lock(&ps(&name))["state"], "free");

    // Both leave: they disappear from the users.
    let (hpid, wpid) = (holder.pid() as i64, waiter.pid() as i64);
    holder.reap();
    waiter.reap();
    let users = user_pids(&ps(&name));
    assert!(
        !users.contains(&hpid) && !users.contains(&wpid),
        "{users:?}"
    );
    assert_eq!(sorted(users), sorted(vec![cpid, mpid]));

    // A holder killed holding it: the word keeps its tid, which is dead.
    let mut victim = Helper::spawn("hold", "futex", &name);
    let vtid = victim.expect("held");
    victim.kill_unreaped();
    let o = ps(&name);
    let l = lock(&o);
    assert_eq!(l["state"], "held");
    assert_eq!(l["holder"]["id"], vtid);
    assert_eq!(l["holder"]["dead"], true, "{l:#}");
    let notes = l["notes"].to_string();
    assert!(notes.contains("takes it over"), "{notes}");
    assert!(
        !user_pids(&o).contains(&(victim.pid() as i64)),
        "a zombie maps nothing"
    );
    victim.reap();
    assert_eq!(lock(&ps(&name))["holder"]["liveness"], "gone");

    // The creator dies while the mapper still maps it: not stale.
    creator.end_unreaped();
    let o = ps(&name);
    assert_eq!(o["creator"]["liveness"], "zombie");
    assert_eq!(user_pids(&o), vec![mpid]);
    assert_eq!(o["stale"], false);
    let why = o["staleness"].as_str().unwrap();
    assert!(why.contains(&format!("mapped by pid {mpid}")), "{why}");
    let clean = run(SHMLAB, &["clean"]);
    clean.expect_code(0);
    assert!(
        clean
            .stdout
            .contains(&format!("left {name}: mapped by pid {mpid}")),
        "{}",
        clean.stdout
    );
    assert!(exists(&name), "clean removed a region a live process maps");
    let one = run(SHMLAB, &["clean", "--name", name.as_str()]);
    one.expect_code(2);
    assert_eq!(one.stderr.lines().count(), 1, "{}", one.stderr);
    assert!(
        one.stderr.contains(&format!("mapped by pid {mpid}")),
        "{}",
        one.stderr
    );
    assert!(exists(&name));
    let ls = run(SHMLAB, &["ls"]);
    let line = ls
        .stdout
        .lines()
        .find(|l| l.contains(name.as_str()))
        .unwrap()
        .to_owned();
    assert!(
        line.contains(&format!("zombie, but mapped by pid {mpid}")) && !line.contains("STALE"),
        "{line}"
    );

    // The mapper leaves: a zombie creator and no users is stale.
    mapper.reap();
    let o = ps(&name);
    assert_eq!(o["creator"]["liveness"], "zombie");
    assert!(user_pids(&o).is_empty());
    assert_eq!(o["stale"], true, "{o:#}");
    let ls = run(SHMLAB, &["ls"]);
    assert!(
        ls.stdout
            .lines()
            .any(|l| l.contains(name.as_str()) && l.contains("zombie: STALE")),
        "{}",
        ls.stdout
    );
    let dry = run(SHMLAB, &["clean", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout.contains(&format!(
            "would remove {name} (shmlab region race/futex ready, creator pid {cpid} zombie: STALE)"
        )),
        "{}",
        dry.stdout
    );
    assert!(exists(&name), "--dry-run removed it");
    let clean = run(SHMLAB, &["clean"]);
    clean.expect_code(0);
    assert!(
        clean.stdout.contains(&format!("removed {name} (")),
        "{}",
        clean.stdout
    );
    assert!(!exists(&name));
    creator.reap();
}

/// Every region lock's holder as the lock records it: a tid for the futex,
/// spin and pthread locks, the last taker's pid for the semaphores; free
/// again after unlock. Every region lock of the registry: one added there
/// is covered here with no change.
#[test]
fn ps_names_the_holder_of_every_region_lock() {
    for mode in race::SyncMode::region_locks() {
        let kind = mode.name();
        let (mut guard, name) = Unlink::new(&format!("ps-holder-{kind}"));
        guard
            .0
            .push(ShmName::parse(&format!("sem.{}", name.file_name())).unwrap());
        let creator = Helper::spawn("create", kind, &name);
        creator.expect("ready");
        let mut holder = Helper::spawn("hold", kind, &name);
        let tid = holder.expect("held");
        let o = ps(&name);
        let l = lock(&o);
        assert_eq!(l["kind"], kind);
        assert_eq!(l["state"], "held", "{kind}: {l:#}");
        let expected_id = if kind.starts_with("sem") {
            holder.pid()
        } else {
            tid
        };
        assert_eq!(l["holder"]["id"], expected_id, "{kind}: {l:#}");
        assert_eq!(l["holder"]["pid"], holder.pid(), "{kind}");
        assert_eq!(l["holder"]["liveness"], "alive", "{kind}");
        if kind.starts_with("sem") {
            assert_eq!(l["value"], 0, "{kind}");
            assert_eq!(l["last_taken_by"]["id"], holder.pid(), "{kind}");
            assert_eq!(l["waiters"]["count"], 0, "{kind}");
        }
        if kind == "sem" {
            let sem = format!("/{}", name.file_name());
            assert_eq!(l["semaphore"], sem.as_str());
            // sem_open maps /dev/shm/sem.NAME: the holder shows as its user.
            let sem_file = ShmName::parse(&format!("sem.{}", name.file_name())).unwrap();
            assert_eq!(user_pids(&ps(&sem_file)), vec![holder.pid() as i64]);
        }
        holder.send("unlock");
        holder.expect("released");
        let o = ps(&name);
        let l = lock(&o);
        assert_eq!(l["state"], "free", "{kind}: {l:#}");
        assert!(l["holder"].is_null(), "{kind}");
        if kind.starts_with("sem") {
            assert_eq!(l["value"], 1, "{kind}");
            assert_eq!(l["last_taken_by"]["id"], holder.pid(), "{kind}");
        }
        drop(holder);
        drop(creator);
        drop(guard);
    }
}

/// The region of `mode`'s race run by this process, if it is in
/// `/dev/shm` now (the race names it by `ShmName::unique`:
/// `shmlab-race-<mode>-<pid>-<n>`).
fn race_region(mode: race::SyncMode) -> Option<ShmName> {
    let purpose: String = format!("race-{mode}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let prefix = format!("shmlab-{purpose}-{}-", std::process::id());
    std::fs::read_dir(shm::SHM_DIR)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|f| f.starts_with(&prefix))
        .map(|f| ShmName::parse(&f).unwrap())
}

/// Every mode of the registry, in a real race (threads, which every mode
/// runs), seen by `shmlab ps` while the race runs (from its progress
/// callback, which the coordinator calls at least once, at the end, while
/// the region is still there): the region is decoded (never "which this
/// build does not know", as `spin-pure` once was), with its counter and
/// its two workers, and a region lock's report names the lock. A mode
/// added to the registry is covered with no change here.
#[test]
fn ps_decodes_the_region_of_every_registry_mode() {
    for mode in race::SyncMode::ALL {
        let cfg = race::Config {
            sync: mode,
            kind: race::WorkerKind::Threads,
            workers: 2,
            iters: 20_000,
            hold: 0,
        };
        let mut seen: Option<Value> = None;
        race::run_trial(&cfg, 1, &mut |_, _| {
            if seen.is_none() {
                seen = race_region(mode).map(|name| ps(&name));
            }
        })
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let o = seen.unwrap_or_else(|| panic!("{mode}: ps never saw its region"));
        let region = &o["region"];
        assert!(
            region["type"].as_str().unwrap().starts_with("race/"),
            "{mode}: {o:#}"
        );
        assert!(
            region["note"]
                .as_str()
                .is_none_or(|n| !n.contains("does not know")),
            "{mode}: {o:#}"
        );
        assert!(region["counter"].is_u64(), "{mode}: {o:#}");
        assert_eq!(
            region["workers"].as_array().unwrap().len(),
            2,
            "{mode}: {o:#}"
        );
        let kinds: Vec<&str> = region["locks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["kind"].as_str().unwrap())
            .collect();
        if mode.is_region_lock() {
            assert_eq!(kinds, [mode.name()], "{mode}: {o:#}");
        } else {
            assert!(kinds.is_empty(), "{mode}: {o:#}");
        }
    }
}

/// A named semaphore records how many sleep on it (glibc's `nwaiters`):
/// two waiters are counted as two; its holder dies and it is wedged.
#[test]
fn ps_counts_a_semaphores_waiters_and_sees_it_wedged() {
    let (mut guard, name) = Unlink::new("ps-sem-waiters");
    let sem_file = ShmName::parse(&format!("sem.{}", name.file_name())).unwrap();
    guard.0.push(sem_file.clone());
    let creator = Helper::spawn("create", "sem", &name);
    creator.expect("ready");
    let mut holder = Helper::spawn("hold", "sem", &name);
    holder.expect("held");
    let w1 = Helper::spawn("wait", "sem", &name);
    w1.expect("waiting");
    let w2 = Helper::spawn("wait", "sem", &name);
    w2.expect("waiting");
    let o = until("two sleepers", || {
        let o = ps(&name);
        (lock(&o)["waiters"]["count"] == 2).then_some(o)
    });
    let l = lock(&o);
    assert_eq!(l["waiters"]["recorded"], "count");
    assert_eq!(l["holder"]["id"], holder.pid());
    // Everyone who sem_open'ed it maps its file.
    assert_eq!(
        sorted(user_pids(&ps(&sem_file))),
        sorted(vec![holder.pid() as i64, w1.pid() as i64, w2.pid() as i64])
    );

    holder.kill_unreaped();
    let o = ps(&name);
    let l = lock(&o);
    assert_eq!(l["state"], "held");
    assert_eq!(l["value"], 0);
    assert_eq!(l["holder"]["id"], holder.pid());
    assert_eq!(l["holder"]["liveness"], "zombie");
    assert_eq!(l["holder"]["dead"], true);
    assert_eq!(l["waiters"]["count"], 2);
    assert!(l["notes"].to_string().contains("wedged"), "{l:#}");
    let text = run(SHMLAB, &["ps", name.as_str()]);
    text.expect_code(0);
    assert!(
        text.stdout.contains(&format!(
            "  lock      sem: held (value 0) by pid {} ",
            holder.pid()
        )) && text.stdout.contains("; waiters: 2"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!(
            "shmlab repair-sem /{} --holder {}",
            name.file_name(),
            holder.pid()
        )),
        "{}",
        text.stdout
    );
    holder.reap();
    drop((w1, w2, creator, guard));
}

/// The C program: create and map an object, close the descriptor, wait
/// for stdin to close.
const C_MAPPER: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = shm_open(argv[1], O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) { perror("shm_open"); return 1; }
    if (ftruncate(fd, 4096) != 0) { perror("ftruncate"); return 1; }
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    close(fd);
    strcpy(p, "made in C");
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {}
    return 0;
}
"#;

fn wait_ready(child: &mut Child) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "{line:?}");
}

/// A foreign object (made and mapped by a C program) lists its mapper, and
/// once unlinked it is still reported, as unlinked, while mapped.
#[test]
fn ps_lists_the_mappers_of_a_c_programs_object() {
    let dir = TempDir::new("ps-c");
    let exe = compile_c(&dir.0, "mapper", C_MAPPER);
    // A foreign name (not `shmlab-…`, which shmlab judges by its pid).
    let name = shm::ShmName::parse(&format!("c-mapper-{}", std::process::id())).unwrap();
    let _guard = Unlink(vec![name.clone()]);
    let mut child = Command::new(&exe)
        .arg(name.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    let pid = child.id() as i64;
    let o = ps(&name);
    assert_eq!(user_pids(&o), vec![pid]);
    assert_eq!(o["users"][0]["mapped"], true);
    assert_eq!(o["users"][0]["fds"], serde_json::json!([]));
    assert_eq!(o["users"][0]["comm"], "mapper");
    assert!(o["creator"].is_null() && o["region"].is_null());
    assert_eq!(o["stale"], false);
    assert!(o["staleness"].as_str().unwrap().starts_with("never"));

    name.unlink().unwrap();
    let o = ps(&name);
    assert_eq!(o["unlinked"], true);
    assert_eq!(user_pids(&o), vec![pid]);
    let text = run(SHMLAB, &["ps", name.as_str()]);
    assert!(text.stdout.contains("UNLINKED"), "{}", text.stdout);
    drop(child.stdin.take());
    child.wait().unwrap();
    let gone = run(SHMLAB, &["ps", name.as_str()]);
    gone.expect_code(2);
    assert_eq!(gone.stderr.lines().count(), 1, "{}", gone.stderr);
}

/// Python's `multiprocessing.shared_memory` maps the object and keeps
/// descriptors open: both show.
#[test]
fn ps_lists_a_python_shared_memory_user() {
    if Command::new("python3")
        .args(["-c", "import multiprocessing.shared_memory"])
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("python3 with multiprocessing.shared_memory is missing: skipped");
        return;
    }
    let (_guard, name) = Unlink::new("ps-py");
    let script = "import sys\nfrom multiprocessing import shared_memory\nm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=4096)\nprint('ready', flush=True)\nsys.stdin.read()\nm.close()\nm.unlink()\n";
    let mut child = Command::new("python3")
        .args(["-c", script, name.file_name()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    let pid = child.id() as i64;
    let o = ps(&name);
    let me: Vec<&Value> = o["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["pid"] == pid)
        .collect();
    assert_eq!(me.len(), 1, "{o:#}");
    assert_eq!(me[0]["mapped"], true);
    assert!(!me[0]["fds"].as_array().unwrap().is_empty(), "{o:#}");
    assert!(
        me[0]["comm"].as_str().unwrap().starts_with("python"),
        "{o:#}"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert!(!exists(&name), "the python side unlinks it");
}

/// As an unprivileged user, root's processes cannot be inspected: they are
/// counted and named, never guessed (root only; skipped otherwise).
#[test]
fn processes_that_cannot_be_inspected_are_reported_not_guessed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: skipping the unprivileged check");
        return;
    }
    let (_guard, name) = Unlink::new("ps-hidden");
    let creator = Helper::spawn("create", "futex", &name);
    creator.expect("ready");
    let r = run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            SHMLAB,
            "ps",
            "--json",
        ],
    );
    if r.code == Some(127) || r.stderr.contains("Permission denied") {
        eprintln!("cannot run shmlab as nobody here: skipped ({})", r.stderr);
        return;
    }
    r.expect_code(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let hidden: Vec<i64> = v["not_inspected_pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assert!(hidden.contains(&(creator.pid() as i64)), "{v:#}");
    assert_eq!(v["processes_not_inspected"], hidden.len());
    let o = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name.as_str())
        .unwrap();
    assert_eq!(o["users"], serde_json::json!([]), "not guessed: {o:#}");
    let text = run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            SHMLAB,
            "ps",
        ],
    );
    assert!(
        text.stdout.contains("could not be inspected"),
        "{}",
        text.stdout
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        &["ps", "a/b"][..],
        &["ps", "--bogus"],
        &["ps", "shmlab-no-such-object-ever"],
        &["watch", "--interval", "0"],
        &["watch", "--interval", "soon"],
        &["watch", "a/b"],
    ] {
        let r = run(SHMLAB, args);
        r.expect_code(2);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    }
    // Not a terminal: one line pointing at `ps`.
    let r = run(SHMLAB, &["watch"]);
    r.expect_code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("shmlab ps"), "{}", r.stderr);
}

/// `shmlab watch --interval 0.1` in a new pseudo-terminal of `rows` x
/// `cols` that is its controlling terminal (as in a real terminal): the
/// child, the pty's master, and everything the child wrote so far.
struct Watch {
    child: Child,
    master: std::os::fd::OwnedFd,
    out: std::sync::Arc<Mutex<Vec<u8>>>,
    rows: u16,
    cols: u16,
}

impl Watch {
    fn start(rows: u16, cols: u16) -> Self {
        use nix::pty::{Winsize, openpty};
        use std::os::unix::process::CommandExt;
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&ws), None).unwrap();
        let mut cmd = Command::new(SHMLAB);
        cmd.args(["watch", "--interval", "0.1"])
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
        // SAFETY: between fork and exec the child only calls `setsid` and
        // `ioctl`, both async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                // SAFETY: TIOCSCTTY on stdin (the pty's slave), argument 0.
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = cmd.spawn().unwrap();
        drop(cmd);
        drop(pty.slave);
        let out = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut reader = std::fs::File::from(pty.master.try_clone().unwrap());
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Watch {
            child,
            master: pty.master,
            out,
            rows,
            cols,
        }
    }

    /// The screen as a terminal would show it now.
    fn screen(&self) -> String {
        let mut p = vt100::Parser::new(
            self.rows.try_into().unwrap(),
            self.cols.try_into().unwrap(),
            0,
        );
        p.process(&self.out.lock().unwrap());
        p.screen().contents()
    }

    fn raw(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn type_keys(&self, keys: &[u8]) {
        let mut master = std::fs::File::from(self.master.try_clone().unwrap());
        master.write_all(keys).unwrap();
    }

    fn exit_code(&mut self, what: &str) -> Option<i32> {
        until(what, || self.child.try_wait().unwrap()).code()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `watch` in a pseudo-terminal: it draws, refreshes (a region created
/// after it started appears), quits on `q` with status 0, and leaves the
/// terminal as it found it (alternate screen left, canonical mode and echo
/// back on).
#[test]
fn watch_runs_in_a_pty_refreshes_and_quits_on_q() {
    use nix::sys::termios::{LocalFlags, tcgetattr};
    let (_guard, name) = Unlink::new("ps-watch");
    let mut w = Watch::start(40, 160);
    until("the first frame", || {
        w.screen()
            .contains("shmlab watch /dev/shm | refresh")
            .then_some(())
    });
    let region = Region::<RaceShared<ByLock<shm_futex::FutexLock>>>::create(
        &name,
        &RegionOptions::default(),
        0,
    )
    .unwrap();
    until("a refresh that shows the new region", || {
        w.screen().contains(name.as_str()).then_some(())
    });
    let shown = w.screen();
    assert!(shown.contains("race/futex, ready"), "{shown}");
    assert!(shown.contains("futex: free"), "{shown}");
    w.type_keys(b"q");
    assert_eq!(
        w.exit_code("watch to exit after q"),
        Some(0),
        "{}",
        w.screen()
    );
    // The child has exited; its last bytes may still be on their way
    // through the pty to the reader thread.
    until("the sequence that leaves the alternate screen", || {
        w.raw().contains("\x1b[?1049l").then_some(())
    });
    assert!(
        w.raw().contains("\x1b[?1049h"),
        "entered the alternate screen"
    );
    let after = tcgetattr(&w.master).unwrap().local_flags;
    assert!(
        after.contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "raw mode was not undone: {after:?}"
    );
    drop(region);
}

/// `kill PID` (SIGTERM) ends it with the signal's status, and the terminal
/// is given back first: alternate screen left, canonical mode and echo on.
#[test]
fn watch_killed_by_sigterm_restores_the_terminal() {
    use nix::sys::termios::{LocalFlags, tcgetattr};
    let mut w = Watch::start(24, 100);
    until("a frame", || w.screen().contains("| refresh").then_some(()));
    let raw = tcgetattr(&w.master).unwrap().local_flags;
    assert!(!raw.contains(LocalFlags::ICANON), "raw mode is on: {raw:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(w.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = until("watch to die of SIGTERM", || w.child.try_wait().unwrap());
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.signal() == Some(libc::SIGTERM) || status.code() == Some(128 + libc::SIGTERM),
        "{status:?}"
    );
    until("the sequence that leaves the alternate screen", || {
        w.raw().contains("\x1b[?1049l").then_some(())
    });
    let after = tcgetattr(&w.master).unwrap().local_flags;
    assert!(
        after.contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "raw mode was not undone: {after:?}"
    );
}

/// Ctrl-C (a key in raw mode) and Esc quit as `q` does.
#[test]
fn watch_quits_on_ctrl_c_and_esc() {
    for key in [&b"\x03"[..], b"\x1b"] {
        let mut w = Watch::start(24, 100);
        // The first frame is drawn once raw mode is on.
        until("a frame", || w.screen().contains("| refresh").then_some(()));
        w.type_keys(key);
        assert_eq!(w.exit_code("watch to exit"), Some(0), "{key:?}");
        // The child has exited; its last bytes may still be on their way
        // through the pty to the reader thread.
        until("the sequence that leaves the alternate screen", || {
            w.raw().contains("\x1b[?1049l").then_some(())
        });
    }
}

/// Lab 7's bounded buffer, frozen mid-run (SIGSTOP to the lab and its
/// workers): `ps` reads the ring's state and its synchronisation from the
/// region — the three semaphores with `--sync sem`, the futex lock and the
/// fill-count word with `--sync futex` — and the values fit the ring. Then
/// Ctrl-C ends the run and nothing is left.
#[test]
fn ps_reads_a_bounded_buffer_mid_run() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    const LAB7: &str = env!("CARGO_BIN_EXE_lab7-buffer");
    for sync in ["sem", "futex"] {
        let child = spawn(
            LAB7,
            &[
                "--sync",
                sync,
                "--producers",
                "1",
                "--consumers",
                "1",
                "--items",
                "1000000",
                "--slots",
                "8",
            ],
        );
        let pid = child.id();
        let tag = format!("-{pid}-");
        let entry = until("the buffer's region", || {
            shm_entries("lab7", &tag).into_iter().next()
        });
        let name = ShmName::parse(&format!("/{entry}")).unwrap();
        // Both workers started, so the ring is moving; then freeze them all.
        until("two workers", || {
            (children_of(pid).len() == 2).then_some(())
        });
        let frozen: Vec<i32> = std::iter::once(pid as i32)
            .chain(children_of(pid))
            .collect();
        // Whatever happens below, they run again (and so finish and clean up).
        struct Thaw(Vec<i32>);
        impl Drop for Thaw {
            fn drop(&mut self) {
                for &p in &self.0 {
                    let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
                }
            }
        }
        let thaw = Thaw(frozen.clone());
        for &p in &frozen {
            kill(Pid::from_raw(p), Signal::SIGSTOP).unwrap();
        }
        let o = ps(&name);
        let region = &o["region"];
        assert_eq!(region["type"], "lab7/bounded-buffer", "{o:#}");
        let note = region["note"].as_str().unwrap();
        assert!(
            note.contains(&format!("lab7: sync {sync}, a ring of 8 slot(s)")),
            "{note}"
        );
        let locks = region["locks"].as_array().unwrap();
        let names: Vec<&str> = locks.iter().map(|l| l["name"].as_str().unwrap()).collect();
        let value = |i: usize| locks[i]["value"].as_i64().unwrap();
        if sync == "sem" {
            assert_eq!(names, ["empty", "full", "mutex"], "{o:#}");
            let (empty, full) = (value(0), value(1));
            assert!((0..=8).contains(&empty) && (0..=8).contains(&full), "{o:#}");
            assert!(empty + full <= 8, "more than the ring holds: {o:#}");
            assert!((0..=1).contains(&value(2)), "{o:#}");
        } else {
            assert_eq!(names, ["lock", "count"], "{o:#}");
            assert_eq!(locks[0]["kind"], "futex", "{o:#}");
            assert!((0..=8).contains(&value(1)), "{o:#}");
        }
        // Ctrl-C, delivered as they continue: the run ends, nothing is left.
        kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
        drop(thaw);
        let out = child.wait_with_output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGINT), "{:?}", out.status);
        wait_until_gone(&frozen, Duration::from_secs(10));
        assert!(
            shm_entries("lab7", &tag).is_empty(),
            "{sync}: left {:?}",
            shm_entries("lab7", &tag)
        );
    }
}
