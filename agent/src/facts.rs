//! Host facts read with sysinfo (OS, memory, swap, CPU, load, primary IPv4), the server description an agent
//! registers with, and the rule that decides when changed facts are worth replicating again.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

use broker_core::model::{CpuInfo, Endpoint, HostFacts, LoadAverage, MemoryInfo, OsInfo, ServerInfo};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, Networks, RefreshKind, System};

use crate::config::AgentConfig;

pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Memory or swap use must move by more than this share of the total before it is replicated again.
const MEMORY_CHANGE_SHARE: f64 = 0.05;
/// A load average must move by more than this before it is replicated again.
const LOAD_CHANGE: f64 = 0.5;

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot read system information: {0}")]
    System(#[from] sysinfo::Error),
}

/// Reads host facts; the parts that cannot change while the agent runs (OS, CPU) are read once.
pub struct FactsCollector {
    system: System,
    os: OsInfo,
    cpu: CpuInfo,
}

impl FactsCollector {
    pub fn new() -> Result<FactsCollector, FactsError> {
        let system = System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::everything()).with_cpu(CpuRefreshKind::nothing()),
        )?;
        let os = os_info();
        let cpu = cpu_info(&system);
        Ok(FactsCollector { system, os, cpu })
    }

    /// Fresh facts: memory, swap and load are read again on every call (cheap: a few /proc files on Linux).
    pub fn host_facts(&mut self) -> HostFacts {
        self.system.refresh_memory();
        let load = System::load_average().unwrap_or_default();
        HostFacts {
            os: self.os.clone(),
            memory: MemoryInfo { total_bytes: self.system.total_memory(), used_bytes: self.system.used_memory() },
            swap: MemoryInfo { total_bytes: self.system.total_swap(), used_bytes: self.system.used_swap() },
            cpu: self.cpu.clone(),
            load: LoadAverage { one_minute: load.one, five_minutes: load.five, fifteen_minutes: load.fifteen },
            gpus: Vec::new(),
            logged_in_users: Vec::new(),
            aws: None,
        }
    }
}

fn os_family() -> &'static str {
    if cfg!(windows) {
        "windows"
    } else {
        "linux"
    }
}

fn os_info() -> OsInfo {
    let kernel_version = System::kernel_version().unwrap_or_default();
    OsInfo {
        family: os_family().to_owned(),
        name: System::name().unwrap_or_else(|_| std::env::consts::OS.to_owned()),
        version: System::os_version().unwrap_or_default(),
        // sysinfo reports the Windows build number as its kernel version; on Linux the kernel release is the
        // closest thing to a build number.
        build_number: kernel_version.clone(),
        kernel_version,
    }
}

fn cpu_info(system: &System) -> CpuInfo {
    let cpus = system.cpus();
    let first = cpus.first();
    let logical = cpus.len().max(1) as u32;
    let physical = System::physical_core_count().map(|n| n as u32).unwrap_or(logical).max(1);
    CpuInfo {
        vendor: first.map(|c| c.vendor_id().trim().to_owned()).unwrap_or_default(),
        model_name: first.map(|c| c.brand().trim().to_owned()).unwrap_or_default(),
        architecture: System::cpu_arch(),
        number_of_cpus: logical,
        physical_cores_per_cpu: (physical / cpu_sockets()).max(1),
    }
}

/// The number of CPU packages; DCV reports cores per package ("PhysicalCoresPerCpu").
fn cpu_sockets() -> u32 {
    #[cfg(target_os = "linux")]
    if let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") {
        let ids: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(key, _)| key.trim() == "physical id")
            .map(|(_, id)| id.trim())
            .collect();
        return (ids.len() as u32).max(1);
    }
    1
}

pub fn hostname() -> String {
    System::host_name()
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn usable(ip: &Ipv4Addr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified() && !ip.is_link_local()
}

/// The host's primary IPv4 address: the preferred interface's when one is configured; else the address the
/// host would use to reach other networks (so that `docker0` and friends are not picked on a busy host); else
/// the first non-loopback interface address in name order; else 127.0.0.1.
pub fn primary_ipv4(preferred_interface: Option<&str>) -> Ipv4Addr {
    let networks = Networks::new_with_refreshed_list().ok();
    let mut interfaces: Vec<(String, Vec<Ipv4Addr>)> = networks
        .iter()
        .flat_map(|n| n.iter())
        .map(|(name, data)| {
            let ips = data
                .ip_networks()
                .iter()
                .filter_map(|net| match net.addr {
                    IpAddr::V4(ip) if usable(&ip) => Some(ip),
                    _ => None,
                })
                .collect();
            (name.to_string_lossy().into_owned(), ips)
        })
        .collect();
    interfaces.sort();
    if let Some(wanted) = preferred_interface {
        match interfaces.iter().find(|(name, _)| name == wanted).and_then(|(_, ips)| ips.first()) {
            Some(ip) => return *ip,
            None => tracing::warn!("preferred_network_interface {wanted:?} has no IPv4 address; picking another"),
        }
    }
    let routed = default_route_source().filter(|ip| interfaces.iter().any(|(_, ips)| ips.contains(ip)));
    routed.or_else(|| interfaces.iter().find_map(|(_, ips)| ips.first().copied())).unwrap_or(Ipv4Addr::LOCALHOST)
}

/// The source address the kernel picks for an outside destination; connecting a UDP socket sends nothing.
fn default_route_source() -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if usable(&ip) => Some(ip),
        _ => None,
    }
}

/// Built-in `dcv:*` tags first, then the configured ones in the order they were read.
pub fn tags(config: &AgentConfig) -> Vec<(String, String)> {
    let mut tags = vec![("dcv:os-family".to_owned(), os_family().to_owned())];
    if let Some(max) = config.max_virtual_sessions {
        tags.push(("dcv:max-virtual-sessions".into(), max.to_string()));
    }
    if let Some(max) = config.max_concurrent_sessions_per_user {
        tags.push(("dcv:max-concurrent-sessions-per-user".into(), max.to_string()));
    }
    tags.extend(config.tags.iter().cloned());
    tags
}

/// What the agent registers with. The backend supplies the endpoints and the server version because only it
/// knows what actually serves the sessions.
pub fn server_info(
    config: &AgentConfig,
    host: HostFacts,
    ip: Ipv4Addr,
    endpoints: Vec<Endpoint>,
    server_version: String,
) -> ServerInfo {
    ServerInfo {
        id: config.server_id.clone(),
        hostname: hostname(),
        ip: ip.to_string(),
        version: server_version,
        agent_version: AGENT_VERSION.to_owned(),
        endpoints,
        host,
        tags: tags(config),
        max_virtual_sessions: config.max_virtual_sessions,
        max_concurrent_sessions_per_user: config.max_concurrent_sessions_per_user,
    }
}

/// True when `new` should be replicated although `old` already was: memory or swap use moved by more than 5% of
/// the total, a load average by more than 0.5, or anything else changed at all. Small drifts are left out so
/// that thousands of agents do not turn every heartbeat into a Raft write.
pub fn differs_meaningfully(old: &HostFacts, new: &HostFacts) -> bool {
    fn memory_moved(old: &MemoryInfo, new: &MemoryInfo) -> bool {
        if old.total_bytes != new.total_bytes {
            return true;
        }
        let moved = old.used_bytes.abs_diff(new.used_bytes) as f64;
        moved > old.total_bytes as f64 * MEMORY_CHANGE_SHARE
    }
    let load_moved = [
        (old.load.one_minute, new.load.one_minute),
        (old.load.five_minutes, new.load.five_minutes),
        (old.load.fifteen_minutes, new.load.fifteen_minutes),
    ]
    .iter()
    .any(|(a, b)| (a - b).abs() > LOAD_CHANGE);
    memory_moved(&old.memory, &new.memory)
        || memory_moved(&old.swap, &new.swap)
        || load_moved
        || old.os != new.os
        || old.cpu != new.cpu
        || old.gpus != new.gpus
        || old.logged_in_users != new.logged_in_users
        || old.aws != new.aws
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_host_facts_are_plausible() {
        let mut collector = FactsCollector::new().unwrap();
        let facts = collector.host_facts();
        assert!(!hostname().is_empty());
        assert!(facts.memory.total_bytes > 0, "{facts:?}");
        assert!(facts.memory.used_bytes <= facts.memory.total_bytes, "{facts:?}");
        assert!(facts.cpu.number_of_cpus >= 1, "{facts:?}");
        assert!(facts.cpu.physical_cores_per_cpu >= 1, "{facts:?}");
        assert!(!facts.cpu.architecture.is_empty(), "{facts:?}");
        assert_eq!(facts.os.family, if cfg!(windows) { "windows" } else { "linux" });
        assert!(!facts.os.kernel_version.is_empty(), "{facts:?}");
        assert!(facts.load.one_minute >= 0.0);
        let ip = primary_ipv4(None);
        assert!(!ip.is_unspecified(), "{ip}");
    }

    #[test]
    fn server_info_carries_builtin_tags_before_configured_ones() {
        let mut config = AgentConfig::minimal(vec!["b:8445".into()], String::new());
        config.server_id = "srv-1".into();
        config.max_virtual_sessions = Some(3);
        config.tags = vec![("color".into(), "pink".into())];
        let facts = FactsCollector::new().unwrap().host_facts();
        let info = server_info(&config, facts, Ipv4Addr::new(10, 0, 0, 7), Vec::new(), "1.0".into());
        assert_eq!(info.id, "srv-1");
        assert_eq!(info.ip, "10.0.0.7");
        assert_eq!(info.agent_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.max_virtual_sessions, Some(3));
        let keys: Vec<&str> = info.tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["dcv:os-family", "dcv:max-virtual-sessions", "color"]);
        assert!(info.tags.contains(&("dcv:os-family".into(), "linux".into())) || cfg!(windows));
        assert!(info.tags.contains(&("dcv:max-virtual-sessions".into(), "3".into())));
        config.max_concurrent_sessions_per_user = Some(2);
        assert!(tags(&config).contains(&("dcv:max-concurrent-sessions-per-user".into(), "2".into())));
    }

    fn sample() -> HostFacts {
        HostFacts {
            memory: MemoryInfo { total_bytes: 1000, used_bytes: 500 },
            swap: MemoryInfo { total_bytes: 100, used_bytes: 10 },
            load: LoadAverage { one_minute: 1.0, five_minutes: 1.0, fifteen_minutes: 1.0 },
            ..HostFacts::default()
        }
    }

    #[test]
    fn only_meaningful_changes_are_replicated() {
        let old = sample();
        let same = |f: &dyn Fn(&mut HostFacts)| {
            let mut new = old.clone();
            f(&mut new);
            differs_meaningfully(&old, &new)
        };
        assert!(!same(&|_| {}));
        assert!(!same(&|f| f.memory.used_bytes = 550), "exactly 5% of total is not more than 5%");
        assert!(!same(&|f| f.memory.used_bytes = 451));
        assert!(same(&|f| f.memory.used_bytes = 551));
        assert!(same(&|f| f.memory.used_bytes = 449));
        assert!(same(&|f| f.memory.total_bytes = 2000));
        assert!(!same(&|f| f.swap.used_bytes = 15));
        assert!(same(&|f| f.swap.used_bytes = 16));
        assert!(!same(&|f| f.load.one_minute = 1.5));
        assert!(same(&|f| f.load.one_minute = 1.51));
        assert!(same(&|f| f.load.fifteen_minutes = 0.4));
        assert!(same(&|f| f.os.version = "24.04".into()));
        assert!(same(&|f| f.cpu.number_of_cpus = 8));
        assert!(same(&|f| f.logged_in_users.push("alice".into())));
    }
}
