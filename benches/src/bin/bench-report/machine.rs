//! Reading: the machine the benchmarks ran on, as BENCHMARKS.md describes
//! it (`/proc/cpuinfo`, `systemd-detect-virt`, `uname -r`, `ldd --version`,
//! `rustc --version`).

/// What a probe that found nothing reports.
const UNKNOWN: &str = "unknown";

/// The machine.
#[derive(Debug, serde::Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub hypervisor_flag: bool,
    pub virt: String,
    pub kernel: String,
    pub glibc: String,
    pub rustc: String,
}

/// The first line a command prints, or [`UNKNOWN`] if it cannot run.
fn first_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            s.trim().lines().next().unwrap_or("").to_string()
        })
        .unwrap_or_else(|_| UNKNOWN.into())
}

/// Probes this machine.
pub fn probe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or(UNKNOWN)
        .to_string();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let hypervisor_flag = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "hypervisor"));
    let virt = first_line("systemd-detect-virt", &[]);
    Machine {
        cpu,
        cores,
        hypervisor_flag,
        virt: if virt.is_empty() {
            UNKNOWN.into()
        } else {
            virt
        },
        kernel: first_line("uname", &["-r"]),
        glibc: first_line("ldd", &["--version"]),
        rustc: first_line("rustc", &["--version"]),
    }
}
