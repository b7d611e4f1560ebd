"""Where the project's own folders are (zoos, webui) and how user-supplied names stay inside folders."""

from __future__ import annotations

from pathlib import Path

from lollms_server.core.errors import echo

PROJECT_ROOT: Path = Path(__file__).resolve().parents[2]
PACKAGE_DIR: Path = Path(__file__).resolve().parents[1]
# a checkout has zoos/ at the project root; an installed wheel carries it inside the package
ZOOS_DIR: Path = PROJECT_ROOT / "zoos" if (PROJECT_ROOT / "zoos").is_dir() else PACKAGE_DIR / "zoos"
WEBUI_DIST_DIR: Path = PROJECT_ROOT / "webui" / "dist"
DEFAULT_CONFIG_DIR: Path = PROJECT_ROOT / "lollms_configs"
MAIN_CONFIG_STEM = "main_config"
CONFIG_EXTENSIONS: tuple[str, ...] = (".yaml", ".yml", ".json", ".toml", ".db", ".sqlite", ".sqlite3")


class PathEscapeError(ValueError):
    """A user-controlled name tried to reach outside its folder."""


def resolve_inside(base: Path, name: str) -> Path:
    """Resolve ``name`` below ``base``; refuse absolute paths, ``..`` and symlinks that leave ``base``."""
    if not name or "\x00" in name:
        raise PathEscapeError("empty or invalid name")
    candidate = Path(name)
    if candidate.is_absolute():
        raise PathEscapeError(f"'{echo(name)}' must be a name relative to its folder, not an absolute path")
    base_resolved = base.resolve()
    target = (base_resolved / candidate).resolve()
    if target != base_resolved and base_resolved not in target.parents:
        raise PathEscapeError(f"'{echo(name)}' points outside its folder")
    return target


def stays_inside(base: Path, entry: Path) -> bool:
    """Whether ``entry`` (symlinks followed) is ``base`` or below it: what listings may show."""
    try:
        root, target = base.resolve(), entry.resolve()
    except (OSError, RuntimeError):  # broken or looping links
        return False
    return target == root or root in target.parents


def resolve_config_path(value: str | None, relative_to: Path) -> Path | None:
    """Make a configured path absolute: relative paths are taken from ``relative_to``."""
    if value is None or value == "":
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else (relative_to / p).resolve()


def resolve_project_path(value: str | None) -> Path | None:
    """A configured project path: relative paths start at the project root, ``zoos/...`` at the zoo
    (which an installed wheel keeps inside the package)."""
    if value is None or value == "":
        return None
    p = Path(value).expanduser()
    if not p.is_absolute() and p.parts and p.parts[0] == "zoos":
        return ZOOS_DIR.joinpath(*p.parts[1:])
    return resolve_config_path(value, PROJECT_ROOT)


def find_main_config(config_dir: Path) -> Path | None:
    """The main config file in ``config_dir`` (any supported extension), or None."""
    found = [config_dir / f"{MAIN_CONFIG_STEM}{ext}" for ext in CONFIG_EXTENSIONS]
    existing = [p for p in found if p.is_file()]
    if len(existing) > 1:
        names = ", ".join(p.name for p in existing)
        raise FileExistsError(f"several main config files in {config_dir}: {names}; keep exactly one")
    return existing[0] if existing else None


def display_path(path: Path) -> str:
    """A path as safe to show to clients: relative to the project or the working folder when inside one,
    else only its last two parts (``…/folder/file``) — never the host's absolute layout."""
    resolved = path.resolve()
    for base in (PROJECT_ROOT, Path.cwd().resolve()):
        if resolved == base or base in resolved.parents:
            return resolved.relative_to(base).as_posix() or "."
    return "…/" + "/".join(resolved.parts[-2:])
