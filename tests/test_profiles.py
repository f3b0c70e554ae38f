import pytest

from simulators.profiles import ProfileError, load_profile, profile_names
from simulators.quirks import REGISTRY, Quirk, QuirkError, QuirkSpec, build, register


def test_every_builtin_profile_loads():
    names = profile_names()
    assert "generic" in names
    for name in names:
        profile = load_profile(name)
        assert profile.name == name
        assert profile.imap.capabilities_after_auth


def test_unknown_profile_names_the_builtins():
    with pytest.raises(ProfileError, match="generic"):
        load_profile("no-such-provider")


def test_bad_profile_file_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: x\nimap: {capabilities_before_auth: [IMAP4rev1], capabilities_after_auth: [IMAP4rev1], delimter: '.'}\n")
    with pytest.raises(ProfileError) as exc:
        load_profile(bad)
    assert "bad.yaml" in str(exc.value) and "imap.delimter" in str(exc.value)


def test_quirk_spec_parses_command_line_form():
    spec = QuirkSpec.parse("m365-throttled-backoff:after=200,backoff_ms=299609,mode=bad,strict=true")
    assert spec.name == "m365-throttled-backoff"
    assert spec.params == {"after": 200, "backoff_ms": 299609, "mode": "bad", "strict": True}
    with pytest.raises(QuirkError):
        QuirkSpec.parse("x:novalue")


def test_registry_refuses_unknown_names_and_parameters():
    @register
    class _Probe(Quirk):
        """A test-only quirk."""

        name = "test-probe"
        protocols = frozenset({"imap"})

        class Params(Quirk.Params):
            after: int = 1

    try:
        assert build(QuirkSpec(name="test-probe", params={"after": 3})).params.after == 3
        with pytest.raises(QuirkError, match="after"):
            build(QuirkSpec(name="test-probe", params={"after": "soon"}))
        with pytest.raises(QuirkError, match="unknown quirk 'nope'"):
            build(QuirkSpec(name="nope"))
    finally:
        REGISTRY.pop("test-probe")


def test_with_quirks_replaces_same_name():
    profile = load_profile("generic")
    a = profile.with_quirks([QuirkSpec(name="appendlimit", params={"bytes": 10})])
    b = a.with_quirks([QuirkSpec(name="appendlimit", params={"bytes": 20})])
    assert [q.params for q in b.quirks if q.name == "appendlimit"] == [{"bytes": 20}]
    assert profile.quirks == [] or all(q.name != "appendlimit" for q in profile.quirks)
