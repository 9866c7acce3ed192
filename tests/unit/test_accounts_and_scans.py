"""Issue 20's pure rules: the account a registry host names, identities in imagectl.toml, exclusion filters judged
against every namespace imagectl writes (any environment), the scan gate's decision for every status, and a
claim whose answer was lost counted as the writer's own."""

import pytest

from imagectl import scan_gate
from imagectl.errors import ConfigError, ScanGateError
from imagectl.history import History, Revision
from imagectl.namespaces import exclusion_problems
from imagectl.registries._base import Claim, ScanReport
from imagectl.registries.kinds import EcrSettings, ecr_account
from imagectl.wildcards import chars, literal, meets
from tests.fakes import MemoryRegistry, image_manifest
from tests.unit.helpers import BASE, config


def test_the_account_comes_from_an_ecr_host_else_registry_id():
    plain = EcrSettings(region="eu-west-1")
    assert ecr_account("111122223333.dkr.ecr.eu-west-1.amazonaws.com", plain) == "111122223333"
    assert ecr_account("111122223333.dkr.ecr-fips.us-east-1.amazonaws.com", plain) == "111122223333"
    assert ecr_account("111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn", plain) == "111122223333"
    assert ecr_account("127.0.0.1:5000", plain) is None
    assert ecr_account("127.0.0.1:5000", EcrSettings(region="eu-west-1", registry_id="222233334444")) == "222233334444"


def test_an_ecr_registry_must_name_its_account_and_names_must_agree():
    ecr = '\n[registries.aws]\nkind = "ecr"\nregion = "eu-west-1"\n'
    with pytest.raises(ConfigError, match="does not name an AWS account: use <account>.dkr.ecr.<region>.amazonaws.com, or set registry_id"):
        config(ecr + 'host = "ecr.proxy.internal"\n')
    with pytest.raises(ConfigError, match="names account 111122223333, but registry_id is 222233334444"):
        config(ecr + 'host = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"\nregistry_id = "222233334444"\n')
    with pytest.raises(ConfigError, match="'registries.aws.registry_id' must be a 12-digit AWS account id"):
        config(ecr + 'host = "ecr.proxy.internal"\nregistry_id = "12"\n')
    assert (
        config(ecr + 'host = "ecr.proxy.internal"\nregistry_id = "222233334444"\n').registries["aws"].settings.registry_id == "222233334444"
    )


def test_identities_are_checked_and_resolved():
    text = (
        BASE
        + '\n[identities.prd]\nprofile = "ci"\nrole_arn = "arn:aws:iam::222233334444:role/imagectl"\nexternal_id = "x"\n'
        + '\n[registries.aws]\nkind = "ecr"\nhost = "222233334444.dkr.ecr.eu-west-1.amazonaws.com"\nregion = "eu-west-1"\n'
        + 'identity = "prd"\n'
    )
    cfg = config(text=text)
    identity = cfg.registries["aws"].identity
    assert identity is not None and identity.role_arn.endswith(":role/imagectl") and identity.profile == "ci"
    assert "x" not in repr(identity)  # the external id is not printed
    with pytest.raises(ConfigError, match=r"names identity 'nope', which is not under \[identities\] \(defined: prd\)"):
        config(text=text.replace('identity = "prd"', 'identity = "nope"'))
    with pytest.raises(ConfigError, match="needs profile or role_arn"):
        config(text=BASE + '\n[identities.empty]\nsession_name = "abc"\n')
    with pytest.raises(ConfigError, match="must be an IAM role ARN"):
        config(text=BASE + '\n[identities.x]\nrole_arn = "arn:aws:iam::1:user/x"\n')
    with pytest.raises(ConfigError, match="applies only with role_arn"):
        config(text=BASE + '\n[identities.x]\nprofile = "p"\nexternal_id = "e"\n')
    store = BASE.replace(
        '[environments.dev]\nregistry = "dev"\n', '[environments.dev]\nregistry = "dev"\nvariable_store = "ssm"\nstore_identity = "prd"\n'
    )
    with pytest.raises(ConfigError, match="'environments.dev.store_identity' names identity 'prd'"):
        config(text=store)


def test_an_ecr_registry_may_not_let_deployed_images_expire():
    """ECR deletes an image's referrers with it: expiring a deployed image would delete history records."""
    ecr = '\n[registries.aws]\nkind = "ecr"\nhost = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"\nregion = "eu-west-1"\n'
    with pytest.raises(ConfigError, match="keep_deployed' cannot be false for a ecr registry"):
        config(ecr + "[registries.aws.retention]\nkeep_deployed = false\n")
    plain = config(
        text=BASE.replace(
            '[registries.dev]\nkind = "oci"\nhost = "dev.example"\n',
            '[registries.dev]\nkind = "oci"\nhost = "dev.example"\nretention = { keep_deployed = false }\n',
        )
    )
    assert plain.registries["dev"].retention.keep_deployed is False  # gc alone decides on a plain registry


def test_wildcards_meet_a_namespace_exactly():
    env = chars("abcdefghijklmnopqrstuvwxyz", 1, 1) + chars("abcdefghijklmnopqrstuvwxyz0123456789_-", 0, 31)
    history = literal("imagectl-history-") + env + literal("-") + chars("0123456789", 6, None)
    assert meets("imagectl-history-stg-*", history) == "imagectl-history-stg-000000"
    assert meets("*-0000001", history) == "imagectl-history-a-0000001"
    assert meets("imagectl-history-*-legacy", history) is None
    assert meets("imagectl-history-Prd-*", history) is None  # tags are case-sensitive; environment names are lower case
    assert meets("*x*y*z*", history) == "imagectl-history-xyz-000000"
    assert meets("", history) is None


@pytest.mark.parametrize(
    "pattern, namespace",
    [
        ("imagectl-history-stg-*", "history records"),
        ("*-000100", "history records"),
        ("imagectl-segment-*", "history segments"),
        ("deployed-*", "deployed tags"),
        ("imagectl-build-*", "build records"),
        ("ctx-*", "base context tags"),
        ("v*", "release versions"),
        ("v1.*", "release versions"),
        ("DATA-*", "build tags"),
        ("*", "history records"),
    ],
)
def test_an_exclusion_filter_over_any_namespace_is_a_problem(pattern, namespace):
    problems = exclusion_problems([pattern])
    assert len(problems) == 1 and f"imagectl's {namespace}" in problems[0]


@pytest.mark.parametrize("pattern", ["latest", "latest*", "dev-*", "sha-*", "cache", "release-*", "x*y", "snapshot"])
def test_a_team_s_own_filters_are_fine(pattern):
    assert exclusion_problems([pattern]) == []


def check(report: ScanReport):
    class Holder(MemoryRegistry):
        def scan_findings(self, repository, digest):
            return report

    return scan_gate.check(Holder(), "r", "sha256:" + "0" * 64, "HIGH", wait=0)


@pytest.mark.parametrize(
    "status, completed, counts, passes",
    [
        ("COMPLETE", True, {}, True),
        ("COMPLETE", True, {"HIGH": 3}, True),
        ("ACTIVE", True, {"LOW": 1}, True),
        ("COMPLETE", True, {"CRITICAL": 1}, False),
        ("ACTIVE", True, {"CRITICAL": 1}, False),
        ("COMPLETE", False, {}, False),
        ("ACTIVE", False, {}, False),
        ("IN_PROGRESS", False, {}, False),
        ("PENDING", False, {}, False),
        ("FAILED", False, {}, False),
        ("UNSUPPORTED_IMAGE", False, {}, False),
        ("SCAN_ELIGIBILITY_EXPIRED", False, {}, False),
        ("FINDINGS_UNAVAILABLE", False, {}, False),
        ("LIMIT_EXCEEDED", False, {}, False),
        ("IMAGE_ARCHIVED", False, {}, False),
        ("NOT_FOUND", False, {}, False),
        ("UNSUPPORTED", False, {}, False),
        ("SOMETHING_NEW", True, {}, False),
    ],
)
def test_the_scan_gate_passes_only_final_findings(status, completed, counts, passes):
    result = check(ScanReport(status, counts, completed=completed, advice="do this"))
    if passes:
        assert scan_gate.enforce(result, "prd", False, None) is None
        return
    with pytest.raises(ScanGateError) as refused:
        scan_gate.enforce(result, "prd", False, None)
    assert "--force --reason" in refused.value.one_line()
    assert scan_gate.enforce(result, "prd", True, "accepted") is not None  # forcing records what it overrode


def test_a_claim_whose_answer_was_lost_is_the_writer_s_own():
    """The registry committed the claim; the answer was lost; the retry met the slot holding exactly this record."""

    class LostAnswer(MemoryRegistry):
        lost = 1

        def claim_tag(self, repository, tag, manifest):
            outcome = super().claim_tag(repository, tag, manifest)
            if self.lost and outcome is Claim.CLAIMED:
                self.lost -= 1
                return super().claim_tag(repository, tag, manifest)  # the retry: SAME
            return outcome

    registry = LostAnswer()
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("DATA-1-1"))
    history = History(registry, "dbt-build", "dev")
    draft = Revision("dev", 0, "2026-11-28T00:00:00Z", "deploy", "DATA-1-1", image.digest, f"x/dbt-build@{image.digest}", "me")
    assert history.append(draft, image).revision == 1
    assert [r.revision for r in History(registry, "dbt-build", "dev").newest(10)] == [1]
