//! Machine baselines and process measurements the benchmarks report beside their own figures.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latency summary in microseconds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

pub fn summarize(histogram: &Histogram<u64>) -> Summary {
    Summary {
        count: histogram.len(),
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
        max_us: histogram.max(),
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

/// Time of one 4 KiB write followed by fdatasync, in the directory the brokers write to.
pub fn fsync_time(dir: &Path, rounds: usize) -> std::io::Result<Summary> {
    let path = dir.join("berth-bench-fsync.tmp");
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
    let block = vec![0xa5u8; 4096];
    let mut histogram = new_histogram();
    for _ in 0..rounds {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        histogram.record(start.elapsed().as_micros().max(1) as u64).ok();
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(summarize(&histogram))
}

/// Round trip of a small UDP datagram over loopback (what QUIC between the nodes rides on).
pub fn loopback_round_trip(rounds: usize) -> std::io::Result<Summary> {
    let server = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let address = server.local_addr()?;
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..rounds {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                let _ = server.send_to(&buf[..n], from);
            }
        }
    });
    let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    client.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut histogram = new_histogram();
    let mut buf = [0u8; 64];
    for _ in 0..rounds {
        let start = Instant::now();
        client.send_to(b"ping", address)?;
        client.recv_from(&mut buf)?;
        histogram.record(start.elapsed().as_micros().max(1) as u64).ok();
    }
    let _ = echo.join();
    Ok(summarize(&histogram))
}

/// Resident set size of a process, from /proc.
pub fn resident_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmRSS:").map(|kib| kib / 1024.0)
}

/// The most a process has been resident since it started (VmHWM), from /proc.
pub fn peak_resident_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmHWM:").map(|kib| kib / 1024.0)
}

/// Datagrams this machine's UDP sockets dropped because their receive buffer was full (RcvbufErrors in
/// /proc/net/snmp, machine-wide): QUIC rides on UDP, and a drop costs a retransmission after a timeout.
pub fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|name| name == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

fn status_kib(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_measure_something() {
        let dir = tempfile::tempdir().unwrap();
        let fsync = fsync_time(dir.path(), 5).unwrap();
        assert_eq!(fsync.count, 5);
        assert!(fsync.p50_us > 0);
        let rtt = loopback_round_trip(20).unwrap();
        assert_eq!(rtt.count, 20);
        let rss = resident_mib(std::process::id()).unwrap();
        assert!(rss > 1.0);
        assert!(peak_resident_mib(std::process::id()).unwrap() >= rss);
        if std::path::Path::new("/proc/net/snmp").exists() {
            assert!(udp_receive_buffer_errors().is_some());
        }
    }
}
