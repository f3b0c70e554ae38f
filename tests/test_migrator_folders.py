"""migrator.folders: delimiter/prefix translation, special-use, target_root, globs, \\Noselect."""

from migrator.folders import ListEntry, Namespace, destination_name, plan_folders, source_path

DOVECOT = Namespace("", "/")
COURIER = Namespace("INBOX.", ".")


def entries(*names, delim="/", flags=None):
    flags = flags or {}
    return [ListEntry(n, frozenset(flags.get(n, ())), delim) for n in names]


def mapped(mapping):
    return {p.source: p.destination for p in mapping.plans}


def test_courier_to_dovecot():
    src = entries("INBOX", "INBOX.Sent", "INBOX.Work", "INBOX.Work.2024", "INBOX.Entwürfe", delim=".")
    m = plan_folders(src, COURIER, entries("INBOX"), DOVECOT)
    assert mapped(m) == {
        "INBOX": "INBOX",
        "INBOX.Sent": "Sent",
        "INBOX.Work": "Work",
        "INBOX.Work.2024": "Work/2024",
        "INBOX.Entwürfe": "Entwürfe",
    }
    assert [p.path for p in m.plans][3] == ("Work", "2024")


def test_dovecot_to_courier_and_inbox_children():
    src = entries("INBOX", "INBOX/Sub", "Work/2024")
    m = plan_folders(src, DOVECOT, entries("INBOX", delim="."), COURIER, map_special_use=False)
    assert mapped(m) == {"INBOX": "INBOX", "INBOX/Sub": "INBOX.Sub", "Work/2024": "INBOX.Work.2024"}
    assert destination_name(("INBOX",), COURIER) == "INBOX"


def test_source_name_with_destination_delimiter_does_not_split():
    src = entries("INBOX", "a/b", "Projects.2024", delim=".")
    m = plan_folders(src, Namespace("", "."), entries("INBOX"), DOVECOT)
    assert mapped(m)["a/b"] == "a_b"
    assert mapped(m)["Projects.2024"] == "Projects/2024"
    assert any("'/'" in n for n in m.plans[1].notes)


def test_special_use_by_attribute_and_by_well_known_name():
    src = entries("INBOX", "Sent Items", "Deleted Items", "Gesendet", flags={"Gesendet": ["\\Sent"]})
    dst = entries("INBOX", "Sent", "Papierkorb", flags={"Sent": ["\\Sent"], "Papierkorb": ["\\Trash"]})
    m = plan_folders(src, DOVECOT, dst, DOVECOT)
    assert mapped(m) == {"INBOX": "INBOX", "Sent Items": "Sent", "Deleted Items": "Papierkorb", "Gesendet": "Sent"}
    assert m.plans[1].special_use == "\\Sent"
    assert any("shares destination" in n for n in m.plans[3].notes)


def test_destination_without_special_use_uses_well_known_names():
    src = entries("INBOX", "Sent", flags={"Sent": ["\\Sent"]})
    dst = entries("INBOX", "Sent Messages")
    assert mapped(plan_folders(src, DOVECOT, dst, DOVECOT))["Sent"] == "Sent Messages"
    # Nothing to map to: keep the name (created at the destination).
    assert mapped(plan_folders(src, DOVECOT, entries("INBOX"), DOVECOT))["Sent"] == "Sent"


def test_target_root_keeps_the_tree_apart():
    src = entries("INBOX", "Sent", "Work/2024", flags={"Sent": ["\\Sent"]})
    dst = entries("INBOX", "Sent Items", flags={"Sent Items": ["\\Sent"]})
    m = plan_folders(src, DOVECOT, dst, COURIER, target_root=["Old mail"])
    assert mapped(m) == {"INBOX": "INBOX.Old mail.INBOX", "Sent": "INBOX.Old mail.Sent", "Work/2024": "INBOX.Old mail.Work.2024"}


def test_include_exclude_and_noselect():
    src = entries("INBOX", "[Gmail]", "Work", "Work/2024", "Spam", flags={"[Gmail]": ["\\Noselect", "\\HasChildren"]})
    m = plan_folders(src, DOVECOT, entries("INBOX"), DOVECOT, include=["INBOX", "Work*", "[[]Gmail]"], exclude=["*/2024"])
    assert list(mapped(m)) == ["INBOX", "Work"]
    assert dict(m.skipped) == {
        "[Gmail]": "\\Noselect",
        "Work/2024": "excluded by '*/2024'",
        "Spam": "not included",
    }


def test_source_path_edge_cases():
    assert source_path("inbox", COURIER) == ("INBOX",)
    assert source_path("Flat", Namespace("", None)) == ("Flat",)


def test_alternative_names_clean_then_number():
    from itertools import islice

    from migrator.folders import alternative_names

    assert list(islice(alternative_names("Work/ Bad  ^Name ", "/"), 2)) == ["Work/Bad _Name", "Work/Bad _Name (2)"]
    assert list(islice(alternative_names("Files", "/"), 2)) == ["Files (2)", "Files (3)"]
    assert next(alternative_names("Réunions  2024", ".")) == "Réunions 2024"  # letters are kept
