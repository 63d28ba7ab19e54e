//! `shmlab ps` against regions crafted by a hostile peer (issue 17,
//! findings 3 and 7), in the real `/dev/shm` under names unique to this
//! test:
//!
//! - a `race/sem` region whose stored semaphore name climbs out of
//!   `/dev/shm` (`/<dir>/../../../tmp/<secret>`, with `/dev/shm/sem.<dir>` a
//!   directory): the old tool read the secret file and printed its first
//!   bytes as the semaphore's value;
//! - one naming a semaphore whose `sem.*` file is a FIFO: the old tool
//!   blocked on it forever;
//! - one whose file name, and one whose type tag, hold terminal escapes
//!   (`ESC[2J`, and the C1 `CSI`), naming a semaphore with an escape too:
//!   the old tool printed them raw.
//!
//! `ps`, `ps NAME` and `ps --json` must each finish, exit 0, print no raw
//! control byte, never print the secret, and say what is wrong with each
//! name; the JSON keeps the names exact.

mod common;
use common::{SHMLAB, control_bytes};
use race::shared::{ByLock, RaceShared};
use shm::{Region, Shared};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type SemRace = RaceShared<ByLock<shm_sem::NamedSemaphore>>;

/// The secret's first 8 bytes: what the old tool showed as the value.
const SECRET_VALUE: u64 = 424_242;
const SECRET_TEXT: &[u8] = b"TOPSECRET-hostile-ps";

/// Removes every path it holds when dropped (files, FIFOs, symlinks and
/// empty directories), so a failing test leaves nothing behind.
#[derive(Default)]
struct Remove(Vec<PathBuf>);

impl Remove {
    fn add(&mut self, p: impl Into<PathBuf>) -> PathBuf {
        let p = p.into();
        self.0.push(p.clone());
        p
    }
}

impl Drop for Remove {
    fn drop(&mut self) {
        for p in &self.0 {
            if std::fs::remove_file(p).is_err() {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}

/// A ready region header for `SemRace` (or whatever `tag` says) by this
/// process, followed by a payload whose named-semaphore state stores
/// `sem_name`.
fn region(tag: &[u8], sem_name: &[u8]) -> Vec<u8> {
    let offset = Region::<SemRace>::payload_offset();
    let size = std::mem::size_of::<SemRace>();
    let mut b = vec![0u8; offset + size];
    b[..8].copy_from_slice(&shm::MAGIC.to_le_bytes());
    b[8..12].copy_from_slice(&shm::VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&2u32.to_le_bytes()); // Ready
    b[16..20].copy_from_slice(&(offset as u32).to_le_bytes());
    b[20..24].copy_from_slice(&(std::mem::align_of::<SemRace>() as u32).to_le_bytes());
    b[24..32].copy_from_slice(&(size as u64).to_le_bytes());
    b[32..36].copy_from_slice(&(std::process::id() as i32).to_le_bytes());
    b[56..56 + tag.len()].copy_from_slice(tag);
    // The lock state: the name (256 bytes), its length, the last holder.
    let at = offset + std::mem::offset_of!(SemRace, lock);
    b[at..at + sem_name.len()].copy_from_slice(sem_name);
    b[at + 256..at + 260].copy_from_slice(&(sem_name.len() as u32).to_le_bytes());
    b
}

/// Runs `shmlab args`, killing it if it has not finished after 30 s (the
/// old tool blocked forever on a FIFO): (exit code, stdout, stderr).
fn shmlab(args: &[&str]) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let mut child = Command::new(SHMLAB)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shmlab");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`shmlab {}` hung: killed after 30 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

#[test]
fn ps_survives_hostile_semaphore_names_and_escapes() {
    let tag = format!("shmlab-hostile-ps-{}", std::process::id());
    let shm_dir = |name: &str| PathBuf::from(format!("{}/{name}", shm::SHM_DIR));
    let mut rm = Remove::default();

    // Finding 3: a name that climbs out of /dev/shm to a secret file.
    let secret = rm.add(format!("/tmp/{tag}-secret"));
    let mut secret_bytes = SECRET_VALUE.to_le_bytes().to_vec();
    secret_bytes.extend_from_slice(SECRET_TEXT);
    secret_bytes.resize(32, b'!');
    std::fs::write(&secret, &secret_bytes).unwrap();
    let dir = rm.add(shm_dir(&format!("sem.{tag}-d")));
    std::fs::create_dir(&dir).unwrap();
    let climb = format!("/{tag}-d/../../..{}", secret.display());
    // Before the fix, this is the file `ps` opened.
    let old_path = shm_sem::sem_path(&climb);
    assert_eq!(std::fs::read(&old_path).unwrap(), secret_bytes);
    let leak = format!("{tag}-leak");
    std::fs::write(
        rm.add(shm_dir(&leak)),
        region(SemRace::type_name().as_bytes(), climb.as_bytes()),
    )
    .unwrap();

    // Finding 3: the semaphore's file is a FIFO.
    let fifo = rm.add(shm_dir(&format!("sem.{tag}-fifo")));
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let via_fifo = format!("{tag}-via-fifo");
    std::fs::write(
        rm.add(shm_dir(&via_fifo)),
        region(
            SemRace::type_name().as_bytes(),
            format!("/{tag}-fifo").as_bytes(),
        ),
    )
    .unwrap();

    // Finding 7: escapes in a file name, a type tag and a semaphore name.
    let esc = format!("{tag}-esc\x1b[2J\u{9b}31m");
    let esc_sem = format!("/{tag}-sem\x1b[2J");
    std::fs::write(
        rm.add(shm_dir(&esc)),
        region(SemRace::type_name().as_bytes(), esc_sem.as_bytes()),
    )
    .unwrap();
    let bad_tag = format!("{tag}-tag");
    std::fs::write(
        rm.add(shm_dir(&bad_tag)),
        region(b"race/x\x1b[2J\x1b]0;pwned\x07", b"/x"),
    )
    .unwrap();

    let runs = [
        vec!["ps".to_string()],
        vec!["ps".into(), format!("/{leak}")],
        vec!["ps".into(), format!("/{via_fifo}")],
        vec!["ps".into(), "--json".into()],
    ];
    let mut outputs = Vec::new();
    for args in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = shmlab(&args);
        let show = format!(
            "`shmlab {}` exited {code:?}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
        assert_eq!(code, Some(0), "{show}");
        for b in [&stdout, &stderr] {
            assert_eq!(
                control_bytes(b),
                Vec::<usize>::new(),
                "raw control bytes: {show}"
            );
            assert!(
                !b.windows(SECRET_TEXT.len()).any(|w| w == SECRET_TEXT),
                "printed the secret: {show}"
            );
            let value = SECRET_VALUE.to_string();
            assert!(
                !String::from_utf8_lossy(b).contains(&value),
                "printed the secret's first bytes as a value: {show}"
            );
        }
        outputs.push(String::from_utf8(stdout).unwrap());
    }

    // The text report says what is wrong with each name, escaped.
    let text = &outputs[0];
    assert!(
        text.contains(&format!(
            "- invalid name ({climb}): only the leading / is allowed; it contains another /; no file is opened for it"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "- its file /dev/shm/sem.{tag}-fifo cannot be read: /dev/shm/sem.{tag}-fifo is a FIFO, not a regular file: not opened"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("/{tag}-esc\\x1b[2J\\xc2\\x9b31m  shm")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "- its file /dev/shm/sem.{tag}-sem\\x1b[2J does not exist (the semaphore was unlinked)"
        )),
        "{text}"
    );
    assert!(
        text.contains("region    race/x\\x1b[2J\\x1b]0;pwned\\x07, ready"),
        "{text}"
    );
    assert!(
        outputs[1].contains(&format!("/{leak}  shm")),
        "{}",
        outputs[1]
    );
    assert!(outputs[2].contains("is a FIFO"), "{}", outputs[2]);

    // The JSON keeps every name exact.
    let json: serde_json::Value = serde_json::from_str(&outputs[3]).unwrap();
    let object = |name: &str| {
        json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == format!("/{name}"))
            .unwrap_or_else(|| panic!("/{name:?} not in {json:#}"))
            .clone()
    };
    let lock = |name: &str| object(name)["region"]["locks"][0].clone();
    assert_eq!(lock(&leak)["semaphore"], climb.as_str());
    assert_eq!(lock(&leak)["value"], serde_json::Value::Null);
    assert_eq!(lock(&via_fifo)["value"], serde_json::Value::Null);
    assert_eq!(lock(&esc)["semaphore"], esc_sem.as_str());
    assert_eq!(
        object(&bad_tag)["region"]["type"],
        "race/x\x1b[2J\x1b]0;pwned\x07"
    );
    assert!(object(&esc).get("name_escaped").is_none());

    // The secret and the FIFO are untouched; everything made is removed.
    assert_eq!(std::fs::read(&secret).unwrap(), secret_bytes);
    drop(rm);
    for p in [&secret, &dir, &fifo] {
        assert!(p.symlink_metadata().is_err(), "{} left behind", p.display());
    }
}
