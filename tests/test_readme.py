"""The README stays a short, true map of the repository.

It is at most 250 lines, its first commands are ``make run`` and ``make test``, every repository
path it names exists, its layout names every top-level folder and every ``clinic/`` subpackage,
and every link in it and in ``docs/`` resolves (anchors included).
"""

from __future__ import annotations

import fnmatch
import functools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_LINES = 250

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
_SHELL_BLOCKS = {"sh", "bash", "shell", "console"}
# A path-like word: names joined by "/" (or one name). Not when it continues a URL, a module
# path, an option or a template, hence the characters it may not follow.
_PATH = re.compile(r"(?<![\w/.:$<>{}*@~=-])([A-Za-z_.][\w.-]*(?:/[\w.-]+)*/?)")
_FILE_SUFFIXES = (".py", ".yml", ".yaml", ".md", ".txt", ".json", ".toml", ".ini", ".png")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
_SKIPPED_DIRS = {".git", ".venv", "node_modules", "__pycache__"}


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _without_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


@functools.cache
def _ignored_patterns() -> tuple[str, ...]:
    """Names git ignores: generated or local (var/, models/, .venv/...), never repository paths."""
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    return tuple(line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#"))


@functools.cache
def _repository_paths() -> frozenset[str]:
    """Every file and folder of the working tree, relative, in posix form (folders end with /)."""
    paths: set[str] = set()
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if _SKIPPED_DIRS.intersection(relative.parts):
            continue
        paths.add(relative.as_posix() + ("/" if path.is_dir() else ""))
    return frozenset(paths)


def _named_paths(text: str) -> list[str]:
    """Words of the text that name a repository path: with a slash, or a file name."""
    names = []
    for match in _PATH.finditer(text):
        word = match.group(1).rstrip(".")
        if word.startswith("./"):
            word = word[2:]
        if "/" in word or word.endswith(_FILE_SUFFIXES):
            names.append(word)
    return sorted(set(names))


def _exists(name: str, repository: frozenset[str], ignored: tuple[str, ...]) -> bool:
    """True for a path from the root, a path's tail (``integration/`` in tests/), or a git-ignored name."""
    parts = [part for part in name.split("/") if part]
    if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in ignored):
        return True
    if (ROOT / parts[0]).exists():
        return (ROOT / name).exists()
    tail = "/".join(parts) + ("/" if name.endswith("/") else "")
    return any(path == tail or path.endswith("/" + tail) for path in repository)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(markdown: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in _HEADING.findall(_without_code_blocks(markdown.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def _links() -> list[tuple[str, str]]:
    """(file, target) of every relative link in the README and docs/."""
    files = [README, *sorted(DOCS.glob("*.md"))]
    links = []
    for markdown in files:
        text = _without_code_blocks(markdown.read_text(encoding="utf-8"))
        for target in _LINK.findall(text):
            if not re.match(r"[a-z]+:", target):
                links.append((markdown.relative_to(ROOT).as_posix(), target))
    return sorted(set(links))


def test_readme_is_at_most_250_lines() -> None:
    lines = len(_readme().splitlines())
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_first_two_commands_are_make_run_then_make_test() -> None:
    commands = []
    for info, body in _FENCE.findall(_readme()):
        if info.strip() not in _SHELL_BLOCKS:
            continue
        for line in body.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    assert commands[:2] == ["make run", "make test"]


@pytest.mark.parametrize("name", _named_paths(_readme()))
def test_path_named_in_readme_exists(name: str) -> None:
    assert _exists(name, _repository_paths(), _ignored_patterns()), f"README.md names {name}, which does not exist"


@pytest.mark.parametrize(("source", "target"), _links())
def test_link_resolves(source: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    markdown = (ROOT / source).parent / path if path else ROOT / source
    assert markdown.exists(), f"{source} links to {target}: no such file"
    if anchor and markdown.suffix == ".md":
        assert anchor in _anchors(markdown), f"{source} links to {target}: no such heading"


def test_readme_links_to_every_doc() -> None:
    linked = {target.partition("#")[0] for source, target in _links() if source == "README.md"}
    docs = {f"docs/{path.name}" for path in DOCS.glob("*.md")}
    assert docs <= linked, f"not linked from README.md: {sorted(docs - linked)}"


def _layout_section() -> str:
    readme = _readme()
    start = readme.index("\n## Layout")
    end = readme.find("\n## ", start + 1)
    return readme[start:end]


def _tracked_files() -> list[str]:
    """Committed files only: work in progress in the working tree is not the README's business yet."""
    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return files.splitlines()


def test_layout_names_every_top_level_folder() -> None:
    folders = sorted({path.split("/", 1)[0] for path in _tracked_files() if "/" in path})
    missing = [folder for folder in folders if f"{folder}/" not in _layout_section()]
    assert not missing, f"README.md Layout misses {missing}"


def test_layout_names_every_clinic_subpackage() -> None:
    packages = sorted(
        path.split("/")[1] for path in _tracked_files() if re.fullmatch(r"clinic/[^/]+/__init__\.py", path)
    )
    missing = [name for name in packages if f"clinic/{name}/" not in _layout_section()]
    assert not missing, f"README.md Layout misses clinic subpackages {missing}"
