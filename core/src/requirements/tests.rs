//! Tests of the requirements language: every example of the Session Manager guide and of API-NOTES.md against
//! fixture servers, syntax errors with their positions, and property tests of the printer and the parser.

use proptest::prelude::*;

use super::*;
use crate::model::{AwsInfo, CpuInfo, HostFacts, LoadAverage, MemoryInfo, OsInfo};

const GIB: u64 = 1024 * 1024 * 1024;

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A Windows EC2 instance with 16 GiB and 4 CPUs.
fn windows_on_ec2() -> ServerInfo {
    ServerInfo {
        id: "srv-win-1".into(),
        hostname: "dcv-win-1.example.com".into(),
        ip: "10.0.0.5".into(),
        version: "2023.1.16388".into(),
        agent_version: "2023.1.732".into(),
        host: HostFacts {
            os: OsInfo {
                family: "windows".into(),
                name: "Windows Server 2019 Datacenter".into(),
                version: "10.0.17763".into(),
                kernel_version: String::new(),
                build_number: "17763".into(),
            },
            memory: MemoryInfo { total_bytes: 16 * GIB, used_bytes: 4 * GIB },
            swap: MemoryInfo { total_bytes: 2 * GIB, used_bytes: 0 },
            cpu: CpuInfo {
                vendor: "GenuineIntel".into(),
                model_name: "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz".into(),
                architecture: "x86_64".into(),
                number_of_cpus: 4,
                physical_cores_per_cpu: 2,
            },
            load: LoadAverage { one_minute: 0.5, five_minutes: 0.25, fifteen_minutes: 0.125 },
            aws: Some(AwsInfo {
                region: "eu-west-1".into(),
                ec2_instance_type: "t2.xlarge".into(),
                ec2_instance_id: "i-0123456789abcdef0".into(),
                ec2_image_id: "ami-0abcdef1234567890".into(),
            }),
            ..Default::default()
        },
        tags: tags(&[
            ("dcv:os-family", "windows"),
            ("color", "pink"),
            ("os", "windows"),
            ("ram_gb", "16"),
            ("software", "cad suite"),
            ("irish_name", "o'neil"),
            ("idea_session_id", "abc-123"),
            ("empty", ""),
        ]),
        ..Default::default()
    }
}

/// A small Linux box outside AWS: 512 MiB, one CPU, no `Host.Aws.*`, no build number.
fn linux_on_premises() -> ServerInfo {
    ServerInfo {
        id: "srv-lin-1".into(),
        hostname: "dcv-lin-1".into(),
        version: "2023.1.16388".into(),
        agent_version: "2023.1.732".into(),
        host: HostFacts {
            os: OsInfo {
                family: "linux".into(),
                name: "Ubuntu".into(),
                version: "22.04".into(),
                kernel_version: "5.15.0-91-generic".into(),
                build_number: String::new(),
            },
            memory: MemoryInfo { total_bytes: 512 * 1024 * 1024, used_bytes: 100 * 1024 * 1024 },
            cpu: CpuInfo {
                vendor: "AuthenticAMD".into(),
                model_name: "AMD EPYC 7571".into(),
                architecture: "x86_64".into(),
                number_of_cpus: 1,
                physical_cores_per_cpu: 1,
            },
            load: LoadAverage { one_minute: 1.75, five_minutes: 1.5, fifteen_minutes: 1.0 },
            ..Default::default()
        },
        tags: tags(&[
            ("dcv:os-family", "linux"),
            ("color", "pink"),
            ("os", "linux"),
            ("ram_gb", "4"),
            ("software", "my software"),
            // A later source overrides an earlier one, as in the agent's tag reading.
            ("color", "dark-red"),
        ]),
        ..Default::default()
    }
}

/// (expression, matches the Windows EC2 fixture, matches the Linux fixture)
const GUIDE_EXAMPLES: &[(&str, bool, bool)] = &[
    // CreateSessions > Requirements, Spanish (000) and Chinese (002) guide, identical in both.
    ("tag:color = 'pink' and (server:Host.Os.Family = 'windows' or tag:color := 'red')", true, false),
    // Written inside Python double quotes in the guide; the quotes belong to Python.
    ("server:Host.Aws.Ec2InstanceType := 't2' and server:Host.CpuInfo.NumberOfCpus >= 2", true, false),
    ("server:Host.Memory.TotalBytes > 1024E6", true, false),
    // CreateSessions Python example of both guides.
    ("tag:os = 'windows' and server:Host.Memory.TotalBytes > 1024", true, false),
    ("tag:os = 'linux'", false, true),
    // The reference API spec's description of Requirements (bare keys, the first releases' syntax).
    ("ram_gb = '4' and software='my software'", false, true),
    ("irish_name='o''neil'", true, false),
    // API-NOTES.md: a client in the field pins a session to one host.
    ("tag:idea_session_id='abc-123'", true, false),
];

/// Semantics beyond the guide's examples: numbers, missing facts, case, precedence.
const SEMANTICS: &[(&str, bool, bool)] = &[
    // Numbers compare as numbers when both sides are numbers, quoted or not.
    ("tag:ram_gb >= 4", true, true),
    ("tag:ram_gb > '4'", true, false),
    ("tag:ram_gb = 16.0", true, false),
    ("tag:ram_gb = '16.0'", true, false),
    ("server:Host.Memory.TotalBytes = 17179869184", true, false),
    ("server:Host.Memory.TotalBytes = 1.7179869184E10", true, false),
    ("server:Host.Memory.TotalBytes <= 512E6", false, false),
    ("server:Host.Memory.TotalBytes < 1e9", false, true),
    ("server:Host.CpuLoadAverage.OneMinute < 1.5e0", true, false),
    ("server:Host.CpuLoadAverage.FifteenMinutes = 1", false, true),
    ("server:Host.CpuInfo.PhysicalCoresPerCpu != 2", false, true),
    ("server:Host.Os.Version >= 22", false, true),
    ("tag:dcv:os-family = 'linux'", false, true),
    // Text compares exactly, ordered by characters.
    ("tag:os = 'Windows'", false, false),
    ("tag:os > 'linux'", true, false),
    ("tag:os <= 'linux'", false, true),
    ("server:Host.Os.Version > '10.0.9'", false, true),
    ("server:Host.CpuInfo.ModelName := 'Xeon'", true, false),
    ("server:Host.CpuInfo.ModelName := 'xeon'", false, false),
    ("server:Id := 'win'", true, false),
    ("server:Hostname = 'dcv-lin-1'", false, true),
    ("server:Version = '2023.1.16388' and server:SessionManagerAgentVersion = '2023.1.732'", true, true),
    ("server:Host.Os.Name := 'Ubuntu'", false, true),
    ("server:Host.Os.BuildNumber = 17763", true, false),
    ("server:Host.Os.KernelVersion := '5.15'", false, true),
    ("server:Host.CpuInfo.Architecture = 'x86_64' and server:Host.CpuInfo.Vendor = 'AuthenticAMD'", false, true),
    ("server:Host.Swap.TotalBytes > 0 or server:Host.Swap.UsedBytes > 0", true, false),
    ("server:Host.Memory.UsedBytes < 1E9", false, true),
    ("server:Host.CpuLoadAverage.FiveMinutes >= 0.25", true, true),
    ("server:Host.Aws.Region = 'eu-west-1' and server:Host.Aws.Ec2ImageId := 'ami-'", true, false),
    ("server:Host.Aws.Ec2InstanceId = 'i-0123456789abcdef0'", true, false),
    // The last value of a repeated key wins.
    ("tag:color = 'dark-red'", false, true),
    // A missing tag or absent property: false, except `!=`, which is `not =`.
    ("tag:gpu = 'nvidia'", false, false),
    ("tag:gpu != 'nvidia'", true, true),
    ("not tag:gpu = 'nvidia'", true, true),
    ("tag:gpu < 1 or tag:gpu >= 1 or tag:gpu := ''", false, false),
    ("server:Host.Aws.Region != 'eu-west-1'", false, true),
    ("server:Host.Aws.Region := ''", true, false),
    ("server:Host.Os.KernelVersion != 'x'", true, true),
    ("server:Host.Os.BuildNumber = ''", false, false),
    ("tag:idea_session_id != 'abc-123'", false, true),
    // A tag with an empty value is present.
    ("tag:empty = ''", true, false),
    // Keywords, prefixes and property names in any case.
    ("TAG:color = 'pink' AND NOT Tag:os = 'linux'", true, false),
    ("SERVER:host.os.family = 'windows' Or server:HOST.OS.FAMILY = 'linux'", true, true),
    // Precedence: not > and > or; comparisons tighter than not.
    ("tag:os = 'linux' and tag:color = 'pink' or tag:ram_gb >= 8", true, false),
    ("tag:os = 'linux' and (tag:color = 'pink' or tag:ram_gb >= 8)", false, false),
    ("not tag:os = 'linux' or tag:os = 'linux'", true, true),
    ("not (tag:os = 'linux' or tag:ram_gb >= 8)", false, false),
    ("not not tag:os = 'linux'", false, true),
    // Spacing is free, and `:` before `=` ends a key.
    ("tag:color:='red'", false, true),
    ("(tag:ram_gb>=-1)and(tag:os!='mac')", true, true),
    ("  tag:os\t=\n'linux'  ", false, true),
];

fn check_table(table: &[(&str, bool, bool)]) {
    let windows = windows_on_ec2();
    let linux = linux_on_premises();
    for &(text, want_windows, want_linux) in table {
        let requirement = parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(requirement.matches(&windows), want_windows, "{text} on the Windows EC2 fixture");
        assert_eq!(requirement.matches(&linux), want_linux, "{text} on the Linux fixture");
        let printed = requirement.to_string();
        assert_eq!(parse(&printed).as_ref(), Ok(&requirement), "{text} printed as {printed}");
    }
}

#[test]
fn guide_examples_parse_and_match() {
    check_table(GUIDE_EXAMPLES);
}

#[test]
fn semantics_table() {
    check_table(SEMANTICS);
}

#[test]
fn guide_examples_print_canonically() {
    let cases = [
        (
            "tag:color = 'pink' and (server:Host.Os.Family = 'windows' or tag:color := 'red')",
            "tag:color = 'pink' and (server:Host.Os.Family = 'windows' or tag:color := 'red')",
        ),
        ("ram_gb = '4' and software='my software'", "tag:ram_gb = '4' and tag:software = 'my software'"),
        ("irish_name='o''neil'", "tag:irish_name = 'o''neil'"),
        ("server:Host.Memory.TotalBytes > 1024E6", "server:Host.Memory.TotalBytes > 1024E6"),
        ("SERVER:host.cpuinfo.numberofcpus>=2", "server:Host.CpuInfo.NumberOfCpus >= 2"),
        ("((tag:a = 1))", "tag:a = 1"),
        ("(tag:a = 1 and tag:b = 2) and tag:c = 3", "(tag:a = 1 and tag:b = 2) and tag:c = 3"),
        ("tag:a = 1 or (tag:b = 2 or tag:c = 3)", "tag:a = 1 or (tag:b = 2 or tag:c = 3)"),
        ("(tag:a = 1 and tag:b = 2) or tag:c = 3", "tag:a = 1 and tag:b = 2 or tag:c = 3"),
        ("NOT (tag:a = 1)", "not tag:a = 1"),
        ("not (tag:a = 1 AND tag:b = 2)", "not (tag:a = 1 and tag:b = 2)"),
        ("tag:a = '' and tag:b = ''''", "tag:a = '' and tag:b = ''''"),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text).unwrap().to_string(), want, "{text}");
    }
}

#[test]
fn the_tree_follows_precedence() {
    let cmp = |key: &str| {
        Requirement::Compare(Comparison {
            subject: Subject::Tag(key.into()),
            op: CompareOp::Eq,
            value: Value::Number(Number::new("1").unwrap()),
        })
    };
    assert_eq!(
        parse("tag:a = 1 or tag:b = 1 and not tag:c = 1 or tag:d = 1").unwrap(),
        Requirement::Or(vec![
            cmp("a"),
            Requirement::And(vec![cmp("b"), Requirement::Not(Box::new(cmp("c")))]),
            cmp("d"),
        ])
    );
    assert_eq!(
        parse("irish_name='o''neil'").unwrap(),
        Requirement::Compare(Comparison {
            subject: Subject::Tag("irish_name".into()),
            op: CompareOp::Eq,
            value: Value::Text("o'neil".into()),
        })
    );
    assert_eq!(
        "tag:dcv:max-virtual-sessions >= 2".parse::<Requirement>().unwrap(),
        Requirement::Compare(Comparison {
            subject: Subject::Tag("dcv:max-virtual-sessions".into()),
            op: CompareOp::Ge,
            value: Value::Number(Number::new("2").unwrap()),
        })
    );
}

#[test]
fn every_property_parses_prints_and_reads() {
    let windows = windows_on_ec2();
    let linux = linux_on_premises();
    for &property in Property::ALL {
        let text = format!("server:{} != ''", property.name());
        let requirement = parse(&text).unwrap();
        assert_eq!(requirement.to_string(), text);
        assert_eq!(Property::from_name(&property.name().to_lowercase()), Some(property));
        assert!(property.value(&windows).is_some() || property == Property::OsKernelVersion, "{property}");
        let absent_on_linux = property.name().starts_with("Host.Aws.") || property == Property::OsBuildNumber;
        assert_eq!(property.value(&linux).is_none(), absent_on_linux, "{property}");
    }
    assert_eq!(Property::ALL.len(), 25);
}

/// (input, position, the whole message)
const SYNTAX_ERRORS: &[(&str, usize, &str)] = &[
    ("", 1, "position 1: expected a comparison, 'not' or '(', found end of input"),
    ("   ", 4, "position 4: expected a comparison, 'not' or '(', found end of input"),
    (
        "tag:color = 'pink",
        13,
        "position 13: expected a closing quote for the string that starts here, found end of input",
    ),
    ("tag:a = 'it''s", 9, "position 9: expected a closing quote for the string that starts here, found end of input"),
    ("tag:ram_gb >= ", 15, "position 15: expected a value after '>=', found end of input"),
    ("tag:ram_gb >=", 14, "position 14: expected a value after '>=', found end of input"),
    ("tag:os = linux", 10, "position 10: expected a value after '=', found 'linux'"),
    ("tag:os == 'x'", 9, "position 9: expected a value after '=', found '='"),
    ("= 'x'", 1, "position 1: expected a comparison, 'not' or '(', found '='"),
    ("'x' = tag:os", 1, "position 1: expected a comparison, 'not' or '(', found string 'x'"),
    (
        "tag:os 'x'",
        8,
        "position 8: expected a comparison operator (=, !=, >, >=, <, <=, :=) after 'tag:os', found string 'x'",
    ),
    (
        "tag:os",
        7,
        "position 7: expected a comparison operator (=, !=, >, >=, <, <=, :=) after 'tag:os', found end of input",
    ),
    (
        "server:Host.Os.Famly = 'windows'",
        8,
        "position 8: expected a known server property, found unknown property 'Host.Os.Famly'",
    ),
    ("server:Memory > 1", 8, "position 8: expected a known server property, found unknown property 'Memory'"),
    ("server: = 'x'", 8, "position 8: expected a server property after 'server:', found white space"),
    ("tag:", 5, "position 5: expected a tag key after 'tag:', found end of input"),
    ("sever:Id = 'x'", 1, "position 1: expected 'tag:' or 'server:' before a name that holds a ':', found 'sever:Id'"),
    ("tag:a = 'x')", 12, "position 12: expected 'and', 'or' or end of input, found ')'"),
    ("(tag:a = 'x'))", 14, "position 14: expected 'and', 'or' or end of input, found ')'"),
    (")", 1, "position 1: expected a comparison, 'not' or '(', found ')'"),
    ("tag:a = 'x' garbage", 13, "position 13: expected 'and', 'or' or end of input, found 'garbage'"),
    ("tag:a = 'x' tag:b = 'y'", 13, "position 13: expected 'and', 'or' or end of input, found 'tag:b'"),
    ("tag:a = 'x' and", 16, "position 16: expected a comparison, 'not' or '(' after 'and', found end of input"),
    ("tag:a = 'x' AND ", 17, "position 17: expected a comparison, 'not' or '(' after 'AND', found end of input"),
    ("tag:a = 'x' or and tag:b = 1", 16, "position 16: expected a comparison, 'not' or '(' after 'or', found 'and'"),
    ("not", 4, "position 4: expected a comparison, 'not' or '(' after 'not', found end of input"),
    ("()", 2, "position 2: expected a comparison, 'not' or '(' after '(', found ')'"),
    (
        "(tag:a = 1 and (tag:b = 2)",
        27,
        "position 27: expected 'and', 'or' or ')' to close the '(' at position 1, found end of input",
    ),
    ("tag:a = 1024E", 9, "position 9: expected a number (text goes in single quotes), found '1024E'"),
    ("tag:v >= 1.2.3", 10, "position 10: expected a number (text goes in single quotes), found '1.2.3'"),
    ("tag:a = - 5", 9, "position 9: expected a value after '=', found '-'"),
    ("tag:a # 1", 7, "position 7: expected a comparison operator (=, !=, >, >=, <, <=, :=) after 'tag:a', found '#'"),
    ("tag:a = \"x\"", 9, "position 9: expected a value after '=', found '\"'"),
    ("tag:a ! 1", 7, "position 7: expected a comparison operator (=, !=, >, >=, <, <=, :=) after 'tag:a', found '!'"),
    // Positions count characters, not bytes.
    ("tag:ñandú = 'é' )", 17, "position 17: expected 'and', 'or' or end of input, found ')'"),
];

#[test]
fn syntax_errors_name_their_position() {
    for &(text, position, message) in SYNTAX_ERRORS {
        let err = parse(text).expect_err(text);
        assert_eq!(err.position, position, "{text:?}: {err}");
        assert_eq!(err.to_string(), message, "{text:?}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = |levels: usize| format!("{}tag:a = 1{}", "(".repeat(levels), ")".repeat(levels));
    assert!(parse(&deep(MAX_NESTING)).is_ok());
    let err = parse(&deep(MAX_NESTING + 1)).unwrap_err();
    assert_eq!(err.position, MAX_NESTING + 1);
    assert_eq!(
        err.to_string(),
        "position 101: expected at most 100 levels of parentheses and 'not', found '(' at level 101"
    );
    let nots = format!("{}tag:a = 1", "not ".repeat(MAX_NESTING + 1));
    assert_eq!(parse(&nots).unwrap_err().position, 4 * MAX_NESTING + 1);
    let huge = format!("{}tag:a = 1", "(".repeat(1_000_000));
    assert_eq!(parse(&huge).unwrap_err().position, MAX_NESTING + 1);
}

#[test]
fn long_chains_are_flat() {
    let terms = vec!["tag:a = 1"; 50_000];
    let requirement = parse(&terms.join(" and ")).unwrap();
    assert!(matches!(&requirement, Requirement::And(terms) if terms.len() == 50_000));
    assert!(!requirement.matches(&windows_on_ec2()));
}

#[test]
fn long_text_is_cut_in_messages() {
    let err = parse(&format!("tag:a = 'x' {}", "z".repeat(1000))).unwrap_err();
    assert_eq!(err.found, format!("'{}…'", "z".repeat(40)));
}

fn arb_key() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_.:-]{0,12}|[a-z]{1,3}:[a-z:]{0,4}|é[a-zß]{0,3}"
}

fn arb_comparison() -> impl Strategy<Value = Requirement> {
    let subject =
        prop_oneof![arb_key().prop_map(Subject::Tag), prop::sample::select(Property::ALL).prop_map(Subject::Server),];
    let op = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Contains,
    ]);
    let value = prop_oneof![
        any::<String>().prop_map(Value::Text),
        "[ '()a-z=:]{0,8}".prop_map(Value::Text),
        "[+-]?[0-9]{1,8}(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?"
            .prop_map(|text| Value::Number(Number::new(&text).expect("generated by the number syntax"))),
    ];
    (subject, op, value).prop_map(|(subject, op, value)| Requirement::Compare(Comparison { subject, op, value }))
}

fn arb_requirement() -> impl Strategy<Value = Requirement> {
    arb_comparison().prop_recursive(5, 64, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|term| Requirement::Not(Box::new(term))),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Requirement::And),
            prop::collection::vec(inner, 2..5).prop_map(Requirement::Or),
        ]
    })
}

/// Fragments that make the random texts reach deep into the parser instead of failing at the first character.
const FRAGMENTS: &[&str] = &[
    "tag:a",
    "tag:",
    "server:",
    "server:Id",
    "server:host.os.family",
    "ram_gb",
    "x:y",
    "and",
    "OR",
    "not",
    "(",
    ")",
    "'x'",
    "'",
    "''",
    "'o''neil'",
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    ":=",
    ":",
    "!",
    "1",
    "-2.5",
    "1024E6",
    "1e",
    "1.2.3",
    " ",
    "\t",
    "é",
    "\"",
    "#",
];

fn arb_token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24).prop_map(|fragments| fragments.concat())
}

fn check_never_panics(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(requirement) => {
            let printed = requirement.to_string();
            prop_assert_eq!(parse(&printed), Ok(requirement.clone()), "{:?} printed as {:?}", text, printed);
            requirement.matches(&windows_on_ec2());
            requirement.matches(&linux_on_premises());
        }
        Err(err) => {
            prop_assert!(err.position >= 1 && err.position <= text.chars().count() + 1, "{:?}: {}", text, err);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_gives_the_same_tree(requirement in arb_requirement()) {
        let printed = requirement.to_string();
        let parsed = parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&requirement), "printed as {}", printed);
        prop_assert_eq!(parsed.unwrap().to_string(), printed);
    }

    #[test]
    fn the_parser_never_panics_on_any_text(text in any::<String>()) {
        check_never_panics(&text)?;
    }

    #[test]
    fn the_parser_never_panics_on_token_soup(text in arb_token_soup()) {
        check_never_panics(&text)?;
    }
}
