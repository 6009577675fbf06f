"""Prune that cannot wipe a library by accident (issue #12): only under roots listed in this run, at most
--max-delete assets, --dry-run changes nothing; and symbolic links out of the ingested folders are not read.

Real offline model, real Milvus Lite; the CLI through typer's CliRunner (in-process)."""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

PHOTOS = 5  # the `photo_dir` library


def _paths(lib) -> set[str]:
    return {p for row in lib.iterate(("paths",)) for p in row["paths"]}


def test_a_missing_root_is_refused_and_nothing_is_lost(make_library, photo_dir, tmp_path):
    lib = make_library()
    lib.ingest(photo_dir)
    photo_dir.rename(tmp_path / "elsewhere")  # the share is not mounted
    report = lib.ingest(photo_dir, prune=True)
    assert report.pruned == 0 and lib.count() == PHOTOS
    assert len(report.refused) == 1 and "does not exist" in report.refused[0] and "--force" in report.refused[0]
    assert str(photo_dir) in report.refused[0]
    forced = lib.ingest(photo_dir, prune=True, force=True)
    assert forced.refused == [] and forced.pruned == PHOTOS and lib.count() == 0


def test_an_empty_mount_point_is_refused(make_library, photo_dir, tmp_path):
    lib = make_library()
    lib.ingest(photo_dir)
    away = tmp_path / "away"
    away.mkdir()
    for child in list(photo_dir.iterdir()):
        shutil.move(child, away / child.name)  # the mount point exists, empty
    report = lib.ingest(photo_dir, prune=True)
    assert report.pruned == 0 and lib.count() == PHOTOS
    assert len(report.refused) == 1 and "holds no images" in report.refused[0]


def test_an_unlistable_root_is_refused(make_library, photo_dir):
    if os.geteuid() == 0:
        pytest.skip("root lists any folder")
    lib = make_library()
    lib.ingest(photo_dir)
    os.chmod(photo_dir, 0)
    try:
        report = lib.ingest(photo_dir, prune=True)
    finally:
        os.chmod(photo_dir, 0o755)
    assert report.pruned == 0 and lib.count() == PHOTOS
    assert len(report.refused) == 1 and "cannot be listed" in report.refused[0]


def test_a_root_or_a_folder_that_cannot_be_listed_loses_nothing(make_library, photo_dir, tmp_path, monkeypatch):
    """As the test above, for any user (root lists a chmod 0 folder): a share that answers EACCES to a listing
    and whose files cannot be found either. The root: refused; a subfolder: its records kept while the rest of
    the root is pruned as usual."""
    lib = make_library()
    lib.ingest(photo_dir)
    denied: set[str] = set()
    real = os.scandir

    def scandir(path="."):
        if os.path.abspath(os.fspath(path)) in denied:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    away = tmp_path / "away"
    shutil.move(photo_dir, away)
    photo_dir.mkdir()
    denied.add(str(photo_dir))
    report = lib.ingest(photo_dir, prune=True, max_delete="100%")
    assert report.pruned == 0 and lib.count() == PHOTOS
    assert len(report.refused) == 1 and "cannot be listed" in report.refused[0] and "--force" in report.refused[0]

    photo_dir.rmdir()
    shutil.move(away, photo_dir)
    people = photo_dir / "people"
    denied = {str(people)}
    for child in list(people.iterdir()):  # two photos, gone from view with their folder's listing
        child.unlink()
    os.remove(photo_dir / "things" / "space" / "rocket.jpg")
    report = lib.ingest(photo_dir, prune=True, max_delete="100%")
    assert report.refused == [] and report.pruned == 1 and lib.count() == PHOTOS - 1  # rocket.jpg only
    assert {str(people / "astronaut.jpg"), str(people / "camera.jpg")} <= _paths(lib)
    assert any(e.path == str(people) for e in report.errors), report.errors


def test_a_refused_prune_keeps_the_rest_of_the_run(make_library, photo_dir, tmp_path, photo_arrays):
    """Two roots: one unmounted (refused), one listed (its new file added, its deleted file pruned)."""
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(photo_arrays["cat"][::2, ::2]).save(other / "small-cat.jpg")
    lib = make_library()
    lib.ingest([photo_dir, other])
    assert lib.count() == PHOTOS + 1
    other.rename(tmp_path / "other-unmounted")
    os.remove(photo_dir / "people" / "camera.jpg")
    Image.fromarray(photo_arrays["rocket"][::3, ::3]).save(photo_dir / "new-rocket.jpg")
    report = lib.ingest([photo_dir, other], prune=True, max_delete="50%")
    assert report.added == 1 and report.pruned == 1
    assert [str(other) in why for why in report.refused] == [True]
    paths = _paths(lib)
    assert str(photo_dir / "new-rocket.jpg") in paths and str(photo_dir / "people" / "camera.jpg") not in paths
    assert any(p.startswith(str(other)) for p in paths)  # the unmounted root's record is intact


def test_a_prune_touches_only_the_roots_of_its_run_even_forced(make_library, photo_dir, photo_arrays):
    """Records under a root this run did not list stay, however wide the limits: a sibling folder whose name
    starts like the root's ("library-2" next to "library") is not under it, and a root's subfolder prunes only
    itself."""
    sibling = photo_dir.with_name(photo_dir.name + "-2")
    sibling.mkdir()
    Image.fromarray(photo_arrays["cat"][::2, ::2]).save(sibling / "small-cat.jpg")
    Image.fromarray(photo_arrays["rocket"][::3, ::3]).save(sibling / "small-rocket.jpg")
    lib = make_library()
    lib.ingest([photo_dir, sibling])
    assert lib.count() == PHOTOS + 2
    os.remove(sibling / "small-cat.jpg")
    os.remove(photo_dir / "people" / "camera.jpg")
    os.remove(photo_dir / "things" / "space" / "rocket.jpg")

    report = lib.ingest(photo_dir / "people", prune=True, force=True, max_delete="100%")
    assert (report.pruned, report.refused) == (1, [])  # camera.jpg; rocket.jpg is under another folder
    assert str(photo_dir / "things" / "space" / "rocket.jpg") in _paths(lib)
    report = lib.ingest(photo_dir, prune=True, force=True, max_delete="100%")
    assert (report.pruned, report.refused) == (1, [])  # rocket.jpg, not library-2's small-cat.jpg
    assert str(sibling / "small-cat.jpg") in _paths(lib) and lib.count() == PHOTOS
    report = lib.ingest(sibling, prune=True, force=True, max_delete="100%")
    assert (report.pruned, report.refused) == (1, []) and lib.count() == PHOTOS - 1
    assert _paths(lib) == {
        str(p) for p in [*photo_dir.rglob("*.jpg"), *sibling.rglob("*.jpg")]
    }  # every file still there, and only those


def test_max_delete_limits_a_prune_unless_forced(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    os.remove(photo_dir / "people" / "camera.jpg")
    os.remove(photo_dir / "people" / "astronaut.jpg")
    report = lib.ingest(photo_dir, prune=True)  # default 10%: 2 of 5 is too many
    assert report.pruned == 0 and lib.count() == PHOTOS
    assert len(report.refused) == 1 and "2 of 5" in report.refused[0] and "10%" in report.refused[0]
    assert lib.ingest(photo_dir, prune=True, max_delete=1).refused  # an absolute limit
    assert lib.count() == PHOTOS
    report = lib.ingest(photo_dir, prune=True, max_delete="2")
    assert report.refused == [] and report.pruned == 2 and lib.count() == 3


def test_force_lifts_the_limit(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    shutil.rmtree(photo_dir / "people")
    report = lib.ingest(photo_dir, prune=True, max_delete="0", force=True)
    assert report.refused == [] and report.pruned == 2 and lib.count() == 3


def test_one_deleted_file_is_always_prunable(make_library, photo_dir):
    """10% of a 5-asset library is less than one asset: a prune may still delete one."""
    lib = make_library()
    lib.ingest(photo_dir)
    os.remove(photo_dir / "people" / "camera.jpg")
    report = lib.ingest(photo_dir, prune=True)
    assert report.refused == [] and report.pruned == 1


def test_bad_max_delete_is_a_config_error(make_library, photo_dir):
    from assetrag.errors import ConfigError

    lib = make_library()
    with pytest.raises(ConfigError, match="max_delete"):
        lib.ingest(photo_dir, prune=True, max_delete="lots")


def test_dry_run_lists_what_would_go_and_changes_nothing(make_library, photo_dir, photo_arrays):
    lib = make_library()
    lib.ingest(photo_dir)
    gone = photo_dir / "people" / "camera.jpg"
    os.remove(gone)
    Image.fromarray(photo_arrays["rocket"][::3, ::3]).save(photo_dir / "new-rocket.jpg")
    report = lib.ingest(photo_dir, prune=True, dry_run=True)
    assert report.dry_run and report.would_prune == [str(gone)] and report.would_delete == 1
    assert report.added == report.pruned == 0 and lib.count() == PHOTOS
    assert str(gone) in _paths(lib) and str(photo_dir / "new-rocket.jpg") not in _paths(lib)


def test_remove_dry_run_deletes_nothing(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    found = lib.to_remove([str(photo_dir / "people")])
    assert sorted(os.path.basename(r["path"]) for r in found) == ["astronaut.jpg", "camera.jpg"]
    assert lib.remove([str(photo_dir / "people")], dry_run=True) == 2 and lib.count() == PHOTOS
    assert lib.remove([str(photo_dir / "people")]) == 2 and lib.count() == PHOTOS - 2


# -- symbolic links out of the ingested folders ----------------------------------------------------------


def test_a_symlink_out_of_the_root_is_reported_not_read(make_library, photo_dir, tmp_path, photo_arrays):
    outside = tmp_path / "private"
    outside.mkdir()
    secret = outside / "secret.png"
    Image.fromarray(photo_arrays["coffee"][::2, ::2]).save(secret)
    link = photo_dir / "things" / "innocent.png"
    os.symlink(secret, link)
    os.symlink(photo_dir / "animals" / "cats" / "cat.jpg", photo_dir / "people" / "cat-link.jpg")  # inside: fine
    lib = make_library()
    report = lib.ingest(photo_dir)
    assert [(e.path, "outside the ingested folders" in e.reason) for e in report.errors] == [(str(link), True)]
    assert "--follow-symlinks" in report.errors[0].reason
    assert report.added == PHOTOS and str(link) not in _paths(lib)
    assert str(photo_dir / "people" / "cat-link.jpg") in _paths(lib)

    report = lib.ingest(photo_dir, follow_symlinks=True)
    assert report.errors == [] and report.added == 1 and str(link) in _paths(lib)


# -- the CLI -----------------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from assetrag.cli import app

    monkeypatch.setenv("ASSETRAG_URI", str(tmp_path / "cli.db"))
    monkeypatch.setenv("ASSETRAG_MODEL", "offline")
    monkeypatch.setenv("ASSETRAG_TORCH_THREADS", "2")
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--no-progress"] if args[0] == "ingest" else list(args))


def _ingested(make_library, tmp_path, photo_dir):
    lib = make_library(uri=tmp_path / "cli.db")
    lib.ingest(photo_dir)
    lib.close()  # Milvus Lite: one process-wide lock per data folder


def test_cli_refuses_a_prune_of_an_unmounted_share_with_exit_1(make_library, tmp_path, photo_dir, cli):
    _ingested(make_library, tmp_path, photo_dir)
    photo_dir.rename(tmp_path / "unmounted")
    res = cli("ingest", str(photo_dir), "--prune")
    assert res.exit_code == 1, res.output
    assert "prune refused" in res.output and "does not exist" in res.output and "--force" in res.output
    assert "pruned 0" in res.output
    res = cli("stats", "--json")
    assert res.exit_code == 0 and '"count": 5' in res.output


def test_cli_refuses_a_prune_of_an_empty_mount_point_with_exit_1(make_library, tmp_path, photo_dir, cli):
    _ingested(make_library, tmp_path, photo_dir)
    photo_dir.rename(tmp_path / "unmounted")
    photo_dir.mkdir()  # the mount point is there, the share is not
    res = cli("ingest", str(photo_dir), "--prune")
    assert res.exit_code == 1, res.output
    assert "prune refused" in res.output and "holds no images" in res.output and "--force" in res.output
    assert "pruned 0" in res.output
    res = cli("stats", "--json")
    assert res.exit_code == 0 and '"count": 5' in res.output


def test_cli_dry_run_and_max_delete(make_library, tmp_path, photo_dir, cli):
    _ingested(make_library, tmp_path, photo_dir)
    shutil.rmtree(photo_dir / "people")
    res = cli("ingest", str(photo_dir), "--prune", "--dry-run")
    assert res.exit_code == 1, res.output  # 2 of 5 is over 10%: said, even in a dry run
    assert "would prune 0" in res.output and "2 of 5" in res.output
    assert "held back (2 path(s)" in res.output and str(photo_dir / "people" / "camera.jpg") in res.output
    res = cli("ingest", str(photo_dir), "--prune", "--dry-run", "--max-delete", "40%")
    assert res.exit_code == 0, res.output
    assert "would prune 2 path(s), deleting 2 asset(s)" in res.output
    assert str(photo_dir / "people" / "camera.jpg") in res.output
    res = cli("remove", str(tmp_path / "library" / "things"), "--dry-run")
    assert res.exit_code == 0 and "would remove 2 asset(s)" in res.output and "rocket.jpg" in res.output
    assert '"count": 5' in cli("stats", "--json").output
    res = cli("ingest", str(photo_dir), "--prune", "--max-delete", "2")
    assert res.exit_code == 0 and "pruned 2" in res.output, res.output
    assert '"count": 3' in cli("stats", "--json").output


def test_a_dry_run_tells_moved_files_from_deleted_ones(make_library, photo_dir):
    """Moves are path updates, not deletions — in a dry run as in the real run it previews (it reads the new
    files' bytes to know): no false refusal over --max-delete, and what it says is what the run then does."""
    lib = make_library()
    lib.ingest(photo_dir)
    (photo_dir / "moved").mkdir()
    for name in ("astronaut.jpg", "camera.jpg"):
        os.rename(photo_dir / "people" / name, photo_dir / "moved" / name)
    os.remove(photo_dir / "things" / "space" / "rocket.jpg")
    dry = lib.ingest(photo_dir, prune=True, dry_run=True, max_delete="1")
    assert dry.refused == [] and dry.held_back == [] and lib.count() == PHOTOS
    assert dry.would_delete == 1 and len(dry.would_prune) == 3  # rocket deleted; two old paths of moved files
    real = lib.ingest(photo_dir, prune=True, max_delete="1")
    assert real.refused == [] and real.pruned == 1 and lib.count() == PHOTOS - 1
    assert str(photo_dir / "moved" / "camera.jpg") in _paths(lib)


def test_a_refused_prune_says_which_paths_it_held_back(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    shutil.rmtree(photo_dir / "people")
    for dry_run in (True, False):
        report = lib.ingest(photo_dir, prune=True, dry_run=dry_run)  # 2 of 5: over the default 10%
        assert len(report.refused) == 1 and report.would_prune == [] and lib.count() == PHOTOS
        assert report.held_back == sorted(str(photo_dir / "people" / n) for n in ("astronaut.jpg", "camera.jpg"))


def test_cli_ingest_of_a_path_that_does_not_exist_exits_1(make_library, tmp_path, photo_dir, cli):
    _ingested(make_library, tmp_path, photo_dir)
    res = cli("ingest", str(photo_dir / "typo"))
    assert res.exit_code == 1, res.output
    assert "not found:" in res.output and str(photo_dir / "typo") in res.output
    res = cli("ingest", str(photo_dir))  # bad files alone do not change the exit status
    assert res.exit_code == 0, res.output
