//! Explicit conversions between REST DTOs and broker-core domain types.

use broker_core::validation::SessionRequest;
use broker_core::{ClusterState, HostFacts, Server, Session, UnixMillis};

use crate::dto;

/// ISO-8601 UTC with milliseconds, as the API promises ("2026-11-22T13:50:12.345Z").
pub fn iso_time(at: UnixMillis) -> String {
    let nanos = i128::from(at.0) * 1_000_000;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

pub fn session_request(data: &dto::CreateSessionRequestData) -> SessionRequest {
    SessionRequest {
        name: data.name.clone(),
        owner: data.owner.clone(),
        session_type: data.session_type.clone(),
        dcv_gl_enabled: data.dcv_gl_enabled,
        max_concurrent_clients: data.max_concurrent_clients,
        init_file: data.init_file.clone().or_else(|| data.init_file_path.clone()),
        autorun_file: data.autorun_file.clone(),
        autorun_file_arguments: data.autorun_file_arguments.clone().unwrap_or_default(),
        permissions_file: data.permissions_file.clone().or_else(|| data.permission_file.clone()),
        requirements: data.requirements.clone(),
        enqueue_request: data.enqueue_request.unwrap_or(false),
        disable_retry_on_failure: data.disable_retry_on_failure.unwrap_or(false),
        storage_root: data.storage_root.clone(),
    }
}

fn host(facts: &HostFacts) -> dto::Host {
    dto::Host {
        os: dto::Os {
            family: facts.os.family.clone(),
            name: facts.os.name.clone(),
            version: facts.os.version.clone(),
            kernel_version: facts.os.kernel_version.clone(),
            build_number: facts.os.build_number.clone(),
        },
        memory: dto::Memory { total_bytes: facts.memory.total_bytes, used_bytes: facts.memory.used_bytes },
        swap: dto::Memory { total_bytes: facts.swap.total_bytes, used_bytes: facts.swap.used_bytes },
        aws: facts.aws.as_ref().map(|aws| dto::Aws {
            region: aws.region.clone(),
            ec2_instance_type: aws.ec2_instance_type.clone(),
            ec2_instance_id: aws.ec2_instance_id.clone(),
            ec2_image_id: aws.ec2_image_id.clone(),
        }),
        cpu_info: dto::CpuInfo {
            vendor: facts.cpu.vendor.clone(),
            model_name: facts.cpu.model_name.clone(),
            architecture: facts.cpu.architecture.clone(),
            number_of_cpus: facts.cpu.number_of_cpus,
            physical_cores_per_cpu: facts.cpu.physical_cores_per_cpu,
        },
        cpu_load_average: dto::CpuLoadAverage {
            one_minute: facts.load.one_minute,
            five_minutes: facts.load.five_minutes,
            fifteen_minutes: facts.load.fifteen_minutes,
        },
        gpus: facts
            .gpus
            .iter()
            .map(|g| dto::Gpu { vendor: g.vendor.clone(), model_name: g.model_name.clone() })
            .collect(),
        logged_in_users: facts.logged_in_users.iter().map(|u| dto::LoggedInUser { username: u.clone() }).collect(),
    }
}

fn tags(server: &Server) -> Vec<dto::KeyValuePair> {
    server.info.tags.iter().map(|(k, v)| dto::KeyValuePair { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

fn endpoints(server: &Server) -> Vec<dto::Endpoint> {
    server
        .info
        .endpoints
        .iter()
        .map(|e| dto::Endpoint {
            ip_address: e.ip_address.clone(),
            port: e.port,
            web_url_path: e.web_url_path.clone(),
            protocol: e.protocol.as_api_str().to_owned(),
        })
        .collect()
}

/// The full server, as DescribeServers shows it.
pub fn server(server: &Server) -> dto::Server {
    let unavailability = server.unavailability();
    dto::Server {
        id: server.info.id.clone(),
        ip: server.info.ip.clone(),
        hostname: server.info.hostname.clone(),
        default_dns_name: Some(server.info.hostname.clone()),
        port: server.info.endpoints.first().map(|e| e.port.to_string()),
        endpoints: endpoints(server),
        web_url_path: server.info.endpoints.first().map(|e| e.web_url_path.clone()),
        version: Some(server.info.version.clone()),
        session_manager_agent_version: Some(server.info.agent_version.clone()),
        availability: Some(if unavailability.is_none() { "AVAILABLE" } else { "UNAVAILABLE" }.to_owned()),
        unavailability_reason: unavailability.map(|r| r.as_api_str().to_owned()),
        console_session_count: Some(server.console_session_count),
        virtual_session_count: Some(server.virtual_session_count),
        host: Some(host(&server.info.host)),
        tags: tags(server),
    }
}

/// The short server inside a Session: address, endpoints and tags.
fn session_server(server: &Server) -> dto::Server {
    dto::Server {
        id: server.info.id.clone(),
        ip: server.info.ip.clone(),
        hostname: server.info.hostname.clone(),
        port: server.info.endpoints.first().map(|e| e.port.to_string()),
        endpoints: endpoints(server),
        web_url_path: server.info.endpoints.first().map(|e| e.web_url_path.clone()),
        tags: tags(server),
        ..Default::default()
    }
}

pub fn session(state: &ClusterState, session: &Session) -> dto::Session {
    dto::Session {
        id: session.id.clone(),
        name: session.spec.name.clone(),
        owner: session.spec.owner.clone(),
        server: session.server_id.as_deref().and_then(|id| state.server(id)).map(session_server),
        session_type: session.spec.kind().as_api_str().to_owned(),
        max_concurrent_clients: session.spec.max_concurrent_clients,
        state: session.state.as_api_str().to_owned(),
        substate: session.substate.map(|s| s.as_api_str().to_owned()),
        state_reason: session.state_reason.clone(),
        creation_time: iso_time(session.creation_time),
        last_disconnection_time: session.last_disconnection_time.map(iso_time),
        num_of_connections: session.num_of_connections,
        storage_root: session.spec.storage_root.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_utc_with_milliseconds() {
        assert_eq!(iso_time(UnixMillis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(UnixMillis(1_795_873_812_345)), "2026-11-28T13:50:12.345Z");
    }
}
