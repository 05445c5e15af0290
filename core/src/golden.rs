//! Golden bincode encodings of every `Command` variant. The Raft log stores these bytes; a change here means
//! old logs no longer decode, so a failing test is a compatibility break, not a test to update lightly.

#[cfg(test)]
mod tests {
    use crate::command::{Command, NewSession, Placement};
    use crate::model::*;

    fn samples() -> Vec<(&'static str, Command)> {
        let spec = SessionSpec {
            name: "n".into(),
            owner: "o".into(),
            session_type: Some(SessionType::Virtual),
            dcv_gl_enabled: Some(true),
            max_concurrent_clients: Some(2),
            init_file: Some("i".into()),
            autorun_file: Some("a".into()),
            autorun_file_arguments: vec!["x".into()],
            permissions_file: Some("p".into()),
            requirements: Some("r".into()),
            enqueue_request: true,
            disable_retry_on_failure: false,
            storage_root: Some("s".into()),
        };
        let server = ServerInfo {
            id: "s1".into(),
            hostname: "h".into(),
            ip: "1.2.3.4".into(),
            version: "v".into(),
            agent_version: "a".into(),
            endpoints: vec![Endpoint {
                ip_address: "1.2.3.4".into(),
                port: 8443,
                protocol: EndpointProtocol::Http,
                web_url_path: "/".into(),
            }],
            host: HostFacts {
                os: OsInfo { family: "linux".into(), ..Default::default() },
                memory: MemoryInfo { total_bytes: 1024, used_bytes: 512 },
                load: LoadAverage { one_minute: 0.5, five_minutes: 0.25, fifteen_minutes: 0.0 },
                gpus: vec![GpuInfo { vendor: "nv".into(), model_name: "m".into() }],
                logged_in_users: vec!["u".into()],
                aws: Some(AwsInfo { region: "r".into(), ..Default::default() }),
                ..Default::default()
            },
            tags: vec![("k".into(), "v".into())],
            max_virtual_sessions: Some(4),
            max_concurrent_sessions_per_user: None,
        };
        vec![
            ("Noop", Command::Noop),
            ("InitCluster", Command::InitCluster { cluster_id: "c".into(), signing_key: vec![1, 2] }),
            (
                "RegisterApiClient",
                Command::RegisterApiClient {
                    client: ApiClient {
                        client_id: "id".into(),
                        client_name: "n".into(),
                        secret_salt: "s".into(),
                        secret_sha256: "h".into(),
                        created: UnixMillis(5),
                    },
                },
            ),
            (
                "CreateSessions",
                Command::CreateSessions {
                    request_id: "r".into(),
                    now: UnixMillis(1_000),
                    sessions: vec![NewSession { id: "s".into(), spec }],
                },
            ),
            (
                "PlaceSessions",
                Command::PlaceSessions {
                    now: UnixMillis(2),
                    placements: vec![Placement { session_id: "a".into(), server_id: "b".into() }],
                },
            ),
            (
                "SessionReady",
                Command::SessionReady { session_id: "a".into(), server_id: "b".into(), now: UnixMillis(3) },
            ),
            (
                "SessionFailed",
                Command::SessionFailed {
                    session_id: "a".into(),
                    server_id: "b".into(),
                    reason: "r".into(),
                    max_attempts: 3,
                    now: UnixMillis(4),
                },
            ),
            ("UpsertServer", Command::UpsertServer { server: Box::new(server), now: UnixMillis(6) }),
            (
                "PlacementFailed",
                Command::PlacementFailed { sessions: vec![("a".into(), "why".into())], now: UnixMillis(7) },
            ),
            ("SessionsReady", Command::SessionsReady { sessions: vec![("a".into(), "b".into())], now: UnixMillis(8) }),
            (
                "SetServersOpen",
                Command::SetServersOpen {
                    changes: vec![crate::command::OpenChange { server_id: "s".into(), open: false, force: true }],
                    now: UnixMillis(9),
                },
            ),
            (
                "DeleteSessions",
                Command::DeleteSessions {
                    deletions: vec![crate::command::Deletion {
                        session_id: "a".into(),
                        owner: Some("o".into()),
                        force: false,
                    }],
                    now: UnixMillis(10),
                },
            ),
            (
                "SessionsDeleted",
                Command::SessionsDeleted { sessions: vec![("a".into(), "b".into())], now: UnixMillis(11) },
            ),
            (
                "SetServersReachable",
                Command::SetServersReachable { changes: vec![("s".into(), false)], now: UnixMillis(12) },
            ),
            ("RemoveServers", Command::RemoveServers { server_ids: vec!["s".into()], now: UnixMillis(13) }),
            ("UnregisterApiClient", Command::UnregisterApiClient { client_id: "c".into() }),
            (
                "RegisterAuthServer",
                Command::RegisterAuthServer { server: AuthServer { url: "u".into(), registered: UnixMillis(15) } },
            ),
            ("UnregisterAuthServer", Command::UnregisterAuthServer { url: "u".into() }),
            ("PurgeSessions", Command::PurgeSessions { session_ids: vec!["a".into()], now: UnixMillis(16) }),
            (
                "SetSessionPermissions",
                Command::SetSessionPermissions {
                    session_id: "a".into(),
                    permissions_file: Some("p".into()),
                    now: UnixMillis(17),
                },
            ),
        ]
    }

    const GOLDEN: &[(&str, &str)] = &[
        ("Noop", "00"),
        ("InitCluster", "010163020102"),
        ("RegisterApiClient", "02026964016e017301680a"),
        ("CreateSessions", "030172fbd007010173016e016f0101010101040101690101610101780101700101720100010173"),
        ("PlaceSessions", "04040101610162"),
        ("SessionReady", "050161016206"),
        ("SessionFailed", "060161016201720308"),
        ("UpsertServer", "07027331016807312e322e332e34017601610107312e322e332e34fbfb2000012f056c696e757800000000fb0004fb000200000000000000000000000000e03f000000000000d03f000000000000000001026e76016d01017501017200000001016b01760104000c"),
        ("PlacementFailed", "08010161037768790e"),
        ("SessionsReady", "09010161016210"),
        ("SetServersOpen", "0a010173000112"),
        ("DeleteSessions", "0b01016101016f0014"),
        ("SessionsDeleted", "0c010161016216"),
        ("SetServersReachable", "0d0101730018"),
        ("RemoveServers", "0e0101731a"),
        ("UnregisterApiClient", "0f0163"),
        ("RegisterAuthServer", "1001751e"),
        ("UnregisterAuthServer", "110175"),
        ("PurgeSessions", "1201016120"),
        ("SetSessionPermissions", "13016101017022"),
    ];

    fn encode(command: &Command) -> String {
        let bytes = bincode::serde::encode_to_vec(command, bincode::config::standard()).unwrap();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn every_variant_has_a_golden_encoding() {
        let samples = samples();
        for (name, command) in &samples {
            assert_eq!(*name, command.kind(), "sample names follow Command::kind");
            let golden = GOLDEN.iter().find(|(n, _)| n == name).map(|(_, hex)| *hex);
            assert_eq!(Some(encode(command).as_str()), golden, "encoding of {name} changed or is not pinned yet");
        }
        assert_eq!(GOLDEN.len(), samples.len());
    }

    #[test]
    fn golden_bytes_decode_back() {
        for (name, command) in samples() {
            let hex = GOLDEN.iter().find(|(n, _)| *n == name).unwrap().1;
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            let (decoded, _): (Command, usize) =
                bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
            assert_eq!(decoded, command, "{name}");
        }
    }
}
