"""Pinned Apache Pulsar jars from Maven Central, and the Java that runs them.

geo-recon never runs Maven at run time. Every classpath is pinned in a lock
file beside this module: ``maven/server-<version>.lock`` for each supported
server version (the table in ``pulsar_versions``) and ``maven/tools.lock``;
one line per artifact with its coordinates, sha256 and size. ``fetch_jars``
downloads exactly those files into a cache outside the repository and checks
every checksum; ``lock_jars`` (a maintainer command) regenerates a lock file
from the pom next to it with Maven.

Why a separate tools classpath: the command-line tools (pulsar-admin,
pulsar-perf) are 4.0.8 because their 4.0.7 artifacts are not served. They are
used only as independent clients, whatever server version a lab runs.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from geo_recon.deploy import pulsar_versions
from geo_recon.errors import EnvironmentProblem

PULSAR_VERSION = pulsar_versions.DEFAULT_PULSAR  # the default server version
TOOLS_VERSION = "4.0.8"
MIN_JAVA = 17
DEFAULT_MAVEN_URL = "https://repo1.maven.org/maven2"

MAVEN_DIR = Path(__file__).with_name("maven")
KINDS = ("server", "tools")
# Left out on purpose: function-runtime bundles we never start, and jna (as the
# Pulsar distribution does).
EXCLUDED_ARTIFACTS = "pulsar-functions-runtime-all,pulsar-functions-api-examples,jna"
PER_VERSION_MARKER = "<!-- per-version dependencies -->"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    classifier: str
    sha256: str
    size: int

    @property
    def coordinates(self) -> str:
        base = f"{self.group}:{self.artifact}:{self.version}"
        return f"{base}:{self.classifier}" if self.classifier else base

    @property
    def file_name(self) -> str:
        # Same naming as the Pulsar distribution's lib/ (groupId-prefixed).
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.group}.{self.artifact}-{self.version}{suffix}.jar"

    @property
    def repo_path(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return (
            f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/"
            f"{self.artifact}-{self.version}{suffix}.jar"
        )


def cache_root() -> Path:
    """Where jars (and other downloads) are cached; never inside the repository."""
    env = os.environ.get("GEO_RECON_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "geo-recon"


def maven_url() -> str:
    return os.environ.get("GEO_RECON_MAVEN_URL", DEFAULT_MAVEN_URL).rstrip("/")


# ---------------------------------------------------------------- lock files


def parse_lock(text: str, source: str = "lock") -> list[Artifact]:
    """Parse ``group:artifact:version[:classifier] sha256 size`` lines."""
    artifacts = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        coords = parts[0].split(":") if parts else []
        if len(parts) != 3 or len(coords) not in (3, 4) or not re.fullmatch(r"[0-9a-f]{64}", parts[1]):
            raise EnvironmentProblem(f"{source}:{number}: malformed lock line: {raw!r}")
        group, artifact, version = coords[:3]
        classifier = coords[3] if len(coords) == 4 else ""
        artifacts.append(Artifact(group, artifact, version, classifier, parts[1], int(parts[2])))
    return artifacts


@dataclass(frozen=True)
class Classpath:
    """One locked classpath: the server at a version, or the tools."""

    kind: str
    version: str
    pom: str
    lock: str


def classpath(kind: str = "server", version: str | None = None) -> Classpath:
    """The classpath of ``kind``; for the server, at ``version`` (default: the default version)."""
    if kind == "tools":
        return Classpath("tools", TOOLS_VERSION, "tools-pom.xml", "tools.lock")
    if kind != "server":
        raise EnvironmentProblem(f"unknown classpath {kind!r}; expected one of {', '.join(KINDS)}")
    row = pulsar_versions.release(version)
    return Classpath("server", row.version, "server-pom.xml", f"server-{row.version}.lock")


def read_lock(kind: str = "server", version: str | None = None) -> list[Artifact]:
    cp = classpath(kind, version)
    path = MAVEN_DIR / cp.lock
    if not path.exists():
        option = f" --pulsar {cp.version}" if kind == "server" else ""
        raise EnvironmentProblem(f"{path} is missing; run `geo-recon pulsar lock {kind}{option}`")
    return parse_lock(path.read_text(), str(path))


def render_pom(cp: Classpath) -> str:
    """The pom Maven resolves: the template with this version's properties and extra dependencies."""
    text = (MAVEN_DIR / cp.pom).read_text()
    if cp.kind != "server":
        return text
    row = pulsar_versions.release(cp.version)
    for name, value in pulsar_versions.maven_properties(row).items():
        text, count = re.subn(rf"<{re.escape(name)}>[^<]*</{re.escape(name)}>", f"<{name}>{value}</{name}>", text)
        if count != 1:
            raise EnvironmentProblem(f"{cp.pom}: expected one <{name}> property, found {count}")
    if PER_VERSION_MARKER not in text:
        raise EnvironmentProblem(f"{cp.pom}: the marker {PER_VERSION_MARKER} is missing")
    return text.replace(PER_VERSION_MARKER, PER_VERSION_MARKER + "\n    " + pulsar_versions.extra_dependencies_xml(row))


def lock_jars(kind: str = "server", version: str | None = None, progress: Progress = _quiet) -> Path:
    """Resolve the pom with Maven (Central only) and write the lock file."""
    cp = classpath(kind, version)
    mvn = shutil.which("mvn")
    if not mvn:
        raise EnvironmentProblem("Maven (mvn) is needed to regenerate a lock file; install the Debian package maven")
    excluded = EXCLUDED_ARTIFACTS
    if kind == "server":
        excluded = ",".join([excluded, *pulsar_versions.release(cp.version).extra_exclusions])
    with tempfile.TemporaryDirectory(prefix="geo-recon-lock-") as tmp:
        (Path(tmp) / "pom.xml").write_text(render_pom(cp))
        listing = Path(tmp) / "deps.txt"
        progress(f"resolving {cp.pom} with Maven (Pulsar {kind} {cp.version})")
        proc = subprocess.run(
            [mvn, "-B", "-q", "-s", str(MAVEN_DIR / "settings.xml"), "dependency:list",
             "-DincludeScope=runtime", f"-DoutputFile={listing}", f"-DexcludeArtifactIds={excluded}"],
            cwd=tmp, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise EnvironmentProblem(f"Maven could not resolve {cp.pom} for Pulsar {cp.version}:\n{tail}")
        m2 = Path.home() / ".m2" / "repository"
        option = f" --pulsar {cp.version}" if kind == "server" else ""
        lines = [f"# Pulsar {kind} classpath {cp.version}: generated by `geo-recon pulsar lock {kind}{option}` "
                 f"from {cp.pom}"]
        for raw in sorted(set(listing.read_text().splitlines())):
            fields = raw.strip().split(" ")[0].split(":")
            if len(fields) < 5 or fields[2] != "jar":
                continue
            if len(fields) == 5:
                group, artifact, _, ver, _scope = fields
                classifier = ""
            else:
                group, artifact, _, classifier, ver, _scope = fields[:6]
            art = Artifact(group, artifact, ver, classifier, "0" * 64, 0)
            local = m2 / art.repo_path
            digest = hashlib.sha256(local.read_bytes()).hexdigest()
            lines.append(f"{art.coordinates} {digest} {local.stat().st_size}")
    out = MAVEN_DIR / cp.lock
    out.write_text("\n".join(lines) + "\n")
    progress(f"wrote {out} ({len(lines) - 1} artifacts)")
    return out


# ---------------------------------------------------------------- fetching


def lib_dir(kind: str = "server", version: str | None = None) -> Path:
    cp = classpath(kind, version)
    return cache_root() / f"pulsar-{kind}-{cp.version}" / "lib"


def _lock_digest(artifacts: list[Artifact]) -> str:
    return hashlib.sha256("\n".join(f"{a.coordinates} {a.sha256}" for a in artifacts).encode()).hexdigest()


def jars_ready(kind: str = "server", version: str | None = None) -> bool:
    marker = lib_dir(kind, version) / ".complete"
    return marker.exists() and marker.read_text().strip() == _lock_digest(read_lock(kind, version))


def server_lib(version: str | None = None, progress: Progress = _quiet) -> Path:
    """The lib/ directory holding every jar of Pulsar server ``version`` (default: the default
    version), downloaded and checked first if needed. Its classpath is ``<lib>/*``."""
    return fetch_jars("server", version, progress=progress)


def fetch_jars(kind: str = "server", version: str | None = None, progress: Progress = _quiet,
               workers: int = 8) -> Path:
    """Make sure every locked jar is in the cache with the right checksum; return lib/."""
    artifacts = read_lock(kind, version)
    target = lib_dir(kind, version)
    label = f"{kind} {classpath(kind, version).version}"
    marker = target / ".complete"
    digest = _lock_digest(artifacts)
    if marker.exists() and marker.read_text().strip() == digest:
        return target
    target.mkdir(parents=True, exist_ok=True)
    missing = [a for a in artifacts if not _has_good_copy(target / a.file_name, a)]
    total = sum(a.size for a in missing)
    if missing:
        progress(f"downloading {len(missing)} Pulsar {label} jars ({total / 2**20:.0f} MiB) from {maven_url()} "
                 f"(once; cached in {target.parent})")
    done = {"bytes": 0, "files": 0, "reported": 0}
    lock = threading.Lock()

    def one(art: Artifact) -> None:
        _download(art, target / art.file_name)
        with lock:
            done["bytes"] += art.size
            done["files"] += 1
            pct = int(100 * done["bytes"] / max(total, 1))
            if pct >= done["reported"] + 10 or done["files"] == len(missing):
                done["reported"] = pct
                progress(f"  {done['files']}/{len(missing)} jars, {done['bytes'] / 2**20:.0f} MiB ({pct}%)")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for future in concurrent.futures.as_completed([pool.submit(one, a) for a in missing]):
            future.result()
    wanted = {a.file_name for a in artifacts}
    for stray in target.glob("*.jar"):
        if stray.name not in wanted:
            stray.unlink()
    marker.write_text(digest + "\n")
    return target


def _has_good_copy(path: Path, art: Artifact) -> bool:
    if not path.exists() or path.stat().st_size != art.size:
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() == art.sha256


def _download(art: Artifact, dest: Path) -> None:
    url = f"{maven_url()}/{art.repo_path}"
    tmp = dest.with_suffix(".part")
    last_error = ""
    for _attempt in range(3):
        try:
            sha = hashlib.sha256()
            with requests.get(url, stream=True, timeout=(10, 60)) as resp:
                if resp.status_code != 200:
                    last_error = f"HTTP {resp.status_code}"
                    continue
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_content(1 << 20):
                        sha.update(chunk)
                        fh.write(chunk)
            if sha.hexdigest() != art.sha256:
                last_error = f"checksum mismatch (got {sha.hexdigest()}, lock says {art.sha256})"
                continue
            os.replace(tmp, dest)
            return
        except requests.RequestException as exc:
            last_error = str(exc)
    tmp.unlink(missing_ok=True)
    raise EnvironmentProblem(f"could not download {art.coordinates} from {url}: {last_error}")


# ---------------------------------------------------------------- Java


@dataclass(frozen=True)
class Java:
    path: str
    major: int
    version: str


def find_go(purpose: str) -> str:
    """The Go toolchain, which builds the project's pinned Go tools once (``purpose`` says which, for the error)."""
    for candidate in (shutil.which("go"), "/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if candidate and Path(candidate).exists():
            return candidate
    raise EnvironmentProblem(f"Go is needed once to build {purpose}; install golang-go")


def find_java() -> Java:
    """The java binary to run Pulsar with: $JAVA_HOME/bin/java, else `java` on PATH; 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    where = f"$JAVA_HOME ({home})" if home else "PATH"
    if not candidate or not Path(candidate).exists():
        raise EnvironmentProblem(
            f"Java {MIN_JAVA}+ is required to run Pulsar, but no java was found on {where}; "
            "install openjdk-17-jre-headless or set JAVA_HOME"
        )
    try:
        proc = subprocess.run([candidate, "-XshowSettings:properties", "-version"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"could not run {candidate} -version: {exc}") from None
    match = re.search(r"java\.specification\.version = (\S+)", proc.stderr)
    full = re.search(r"java\.runtime\.version = (\S+)", proc.stderr)
    if not match:
        raise EnvironmentProblem(f"{candidate} did not report its version; is it a Java runtime?")
    spec = match.group(1)
    major = int(spec.split(".")[1]) if spec.startswith("1.") else int(spec)
    if major < MIN_JAVA:
        raise EnvironmentProblem(
            f"Java {MIN_JAVA}+ is required to run Pulsar; {candidate} is Java {spec}. "
            "Install openjdk-17-jre-headless or point JAVA_HOME at a newer JDK"
        )
    return Java(candidate, major, full.group(1) if full else spec)


# ---------------------------------------------------------------- versions


def version_infos() -> list[pulsar_versions.VersionInfo]:
    """Every supported server version with whether its lock exists and its jars are in the cache."""
    out = []
    for row in pulsar_versions.RELEASES:
        locked = (MAVEN_DIR / classpath("server", row.version).lock).exists()
        out.append(pulsar_versions.VersionInfo(
            version=row.version, default=row.version == pulsar_versions.default_version(),
            installed=locked and jars_ready("server", row.version), locked=locked, note=row.note,
            known_bugs=list(row.known_bugs)))
    return out
