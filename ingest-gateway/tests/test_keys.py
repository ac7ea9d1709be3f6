from pathlib import Path

from pravis_gateway.keys import KeyStore, hash_key


def test_created_key_verifies_and_is_stored_only_hashed(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")

    key, record = store.create("shop", "write")

    assert store.verify(key, "write") == record
    assert record.project_id == "shop"
    assert key not in (tmp_path / "keys.json").read_text()
    assert hash_key(key) in (tmp_path / "keys.json").read_text()


def test_wrong_kind_unknown_and_revoked_keys_fail(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, record = store.create("shop", "write")

    assert store.verify(key, "secret") is None
    assert store.verify(key + "x", "write") is None
    assert store.revoke(record.key_id)
    assert store.verify(key, "write") is None
    assert not store.revoke(record.key_id)


def test_a_second_store_on_the_same_file_sees_new_keys(tmp_path: Path) -> None:
    gateway_view = KeyStore(tmp_path / "keys.json")
    assert gateway_view.verify("pvw_anything", "write") is None

    key, _ = KeyStore(tmp_path / "keys.json").create("shop", "write")

    assert gateway_view.verify(key, "write") is not None


def test_registering_a_known_key_again_is_a_no_op(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")

    first = store.create("default", "write", key="pvw_dev")
    second = store.create("default", "write", key="pvw_dev")

    assert first == second
    assert len(store.list()) == 1


def test_a_known_key_is_rechecked_on_disk_only_after_the_recheck_interval(tmp_path: Path) -> None:
    now = [0.0]
    gateway_view = KeyStore(tmp_path / "keys.json", recheck_s=1.0, clock=lambda: now[0])
    cli = KeyStore(tmp_path / "keys.json")
    key, record = cli.create("shop", "write")
    assert gateway_view.verify(key, "write") == record

    cli.revoke(record.key_id)
    now[0] = 0.9
    assert gateway_view.verify(key, "write") == record, "within the interval the file is not read"
    now[0] = 1.0
    assert gateway_view.verify(key, "write") is None


def test_a_key_not_known_yet_is_looked_for_at_once(tmp_path: Path) -> None:
    gateway_view = KeyStore(tmp_path / "keys.json", recheck_s=3600.0, clock=lambda: 0.0)
    first, _ = KeyStore(tmp_path / "keys.json").create("shop", "write")
    assert gateway_view.verify(first, "write") is not None

    second, _ = KeyStore(tmp_path / "keys.json").create("shop", "write")

    assert gateway_view.verify(second, "write") is not None
