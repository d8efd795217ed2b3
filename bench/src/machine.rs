//! Where the figures were measured: CPU count and model, RAM, kernel, the
//! filesystem under the data directory, the date, the git commit and the load
//! average; and the CPU time a process has used, from /proc.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub struct Machine {
    pub cpus: String,
    pub cpu_model: String,
    pub ram: String,
    pub kernel: String,
    pub filesystem: String,
    pub date: String,
    pub commit: String,
    /// 1-minute load average before and after the run.
    pub load: (String, String),
}

/// Trimmed stdout of a command, or "unknown".
fn command_output(program: &str, args: &[&str], dir: &Path) -> String {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// The value after `key` and a colon in a /proc file such as cpuinfo or meminfo.
fn proc_field(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn ram() -> Option<String> {
    let kib: f64 = proc_field("/proc/meminfo", "MemTotal")?.trim_end_matches("kB").trim().parse().ok()?;
    Some(format!("{:.1} GiB", kib / (1024.0 * 1024.0)))
}

/// Type and device of the mount that holds `path` (the longest matching mount point).
fn filesystem(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && path.starts_with(f[1])).then(|| (f[1].len(), format!("{} on {}", f[2], f[0])))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
}

fn git_commit(repo: &Path) -> String {
    let commit = command_output("git", &["rev-parse", "--short", "HEAD"], repo);
    let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"], repo);
    if dirty.is_empty() || dirty == "unknown" {
        commit
    } else {
        format!("{commit} + uncommitted changes")
    }
}

impl Machine {
    /// Describes this machine; `data` is where the databases live.
    pub fn detect(repo: &Path, data: &Path, load_before: String) -> Machine {
        let unknown = || "unknown".to_owned();
        Machine {
            cpus: command_output("nproc", &[], repo),
            cpu_model: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(unknown),
            ram: ram().unwrap_or_else(unknown),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| unknown(), |s| s.trim().to_owned()),
            filesystem: filesystem(data).unwrap_or_else(unknown),
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"], repo),
            commit: git_commit(repo),
            load: (load_before, load_average()),
        }
    }
}

/// The 1-minute load average: how many processes were running or waiting for
/// the CPU or the disk, besides the benchmark's own.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("unknown").to_owned()
}

/// CPU time (user + system) used so far by process `pid` ("self" for this one).
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th
    // and 15th fields of the whole line.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// CPU time used so far by process `pid` and its live descendants (the
/// server's Node.js workers), read from `/proc/<pid>/task/*/children`.
pub fn tree_cpu_time(pid: &str) -> Option<Duration> {
    let mut total = cpu_time(pid)?;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace() {
            total += tree_cpu_time(child).unwrap_or_default();
        }
    }
    Some(total)
}

/// Kernel clock ticks per second (`getconf CLK_TCK`, almost always 100).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| command_output("getconf", &["CLK_TCK"], Path::new("/")).parse().unwrap_or(100.0))
}

/// The machine-wide count of connections dropped because a listen queue was
/// full (`TcpExt ListenOverflows` in /proc/net/netstat).
pub fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let i = names.split_whitespace().position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(i)?.parse().ok()
}
