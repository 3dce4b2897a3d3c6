//! The one model of the templates: short and long forms read alike, references resolve as
//! CloudFormation resolves them, and the workspace's templates read whole.

use std::collections::BTreeMap;

use jit_local::cfn::{Intrinsic, Node, Template};
use serde_json::json;

#[test]
fn short_and_long_forms_read_as_the_same_functions() {
    let short = Node::parse(
        "a: !Ref Table\nb: !GetAtt Role.Arn\nc: !Sub 'arn:${AWS::Partition}:x'\nd: !If [On, 1, 2]\ne: !Select [1, !Ref List]\nf: !Join ['-', [x, y]]\ng: !Equals [a, b]\n",
    )
    .unwrap_or_default();
    let long = Node::parse(
        "a: {Ref: Table}\nb: {'Fn::GetAtt': [Role, Arn]}\nc: {'Fn::Sub': 'arn:${AWS::Partition}:x'}\nd: {'Fn::If': [On, 1, 2]}\ne: {'Fn::Select': [1, {Ref: List}]}\nf: {'Fn::Join': ['-', [x, y]]}\ng: {'Fn::Equals': [a, b]}\n",
    )
    .unwrap_or_default();
    assert_eq!(short, long);
    assert_eq!(
        short["a"].as_intrinsic(),
        Some(&Intrinsic::Ref("Table".to_owned()))
    );
    assert_eq!(
        short["b"].as_intrinsic(),
        Some(&Intrinsic::GetAtt("Role.Arn".to_owned()))
    );
}

#[test]
fn resolving_follows_references_conditions_lists_and_drops_no_value() {
    let node = Node::parse(
        "Principal: {AWS: !Ref Issuer}\nResource: !Sub 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit/*'\nN: 3\nPicked: !Select [1, !Ref List]\nJoined: !Join [':', !Ref List]\nOn: !If [Yes, on, off]\nOff: !If [No, on, off]\nGone: !Ref AWS::NoValue\nItems: [a, !Ref AWS::NoValue, b]\nOwn: !Sub ['${X}-${AWS::AccountId}', {X: !Ref Issuer}]\n",
    )
    .unwrap_or_default();
    let refs = BTreeMap::from([
        ("Issuer".to_owned(), json!("arn:aws:iam::1:role/jit-issuer")),
        ("AWS::Partition".to_owned(), json!("aws")),
        ("AWS::AccountId".to_owned(), json!("222222222222")),
        ("List".to_owned(), json!("a,b,c")),
        ("Condition::Yes".to_owned(), json!(true)),
    ]);
    assert_eq!(
        node.resolve(&refs),
        json!({
            "Principal": {"AWS": "arn:aws:iam::1:role/jit-issuer"},
            "Resource": "arn:aws:iam::222222222222:role/jit/*",
            "N": 3,
            "Picked": "b",
            "Joined": "a:b:c",
            "On": "on",
            "Off": "off",
            "Items": ["a", "b"],
            "Own": "arn:aws:iam::1:role/jit-issuer-222222222222",
        })
    );
}

#[test]
fn the_workspace_templates_read_whole() {
    for file in [
        "template.yaml",
        "infra/target-account.yaml",
        "infra/activity-forwarding.yaml",
    ] {
        let t = Template::workspace(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.resources.is_empty(), "{file}");
        assert!(t.resources.values().all(|r| !r.kind.is_empty()), "{file}");
    }
    let t = Template::workspace("template.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.resources_of("AWS::Serverless::Function").count(), 6);
    assert_eq!(
        t.outputs["IssuerRoleArn"]["Value"].as_intrinsic(),
        Some(&Intrinsic::GetAtt("IssuerFunctionRole.Arn".to_owned()))
    );
    assert!(matches!(
        Template::parse("- a list"),
        Err(why) if why.contains("not a mapping")
    ));
}
