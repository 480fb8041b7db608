"""Pulsar's own command-line tools (pulsar-admin, pulsar-perf) from the pinned tools classpath.

Used as independent witnesses: a setting geo-recon reads back through its own
REST client is read again by the official tool.
"""

from __future__ import annotations

import subprocess

from geo_recon.deploy import pulsar_dist
from geo_recon.errors import EnvironmentProblem

TOOL_JVM_OPTS = ["-XX:+UseSerialGC", "-Djava.net.preferIPv4Stack=true",
                 "--add-opens", "java.base/sun.net=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
                 "--add-opens", "java.base/java.util.zip=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED",
                 "--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED"]


def _client_conf() -> str:
    # The tools insist on a client.conf path as their first argument; settings come from flags.
    path = pulsar_dist.cache_root() / "client.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# empty: geo-recon passes every setting on the command line\n")
    return str(path)


def tool_command(main_class: str, *args: str, netns: str | None = None, heap: str = "256m") -> list[str]:
    """pulsar-perf needs about 1g of heap for its latency histograms; pulsar-admin far less."""
    java = pulsar_dist.find_java().path
    lib = pulsar_dist.fetch_jars("tools")
    argv = [java, f"-Xmx{heap}", f"-XX:MaxDirectMemorySize={heap}", *TOOL_JVM_OPTS, "-cp", f"{lib}/*", main_class, _client_conf(), *args]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def pulsar_admin(admin_url: str, *args: str, timeout: float = 120) -> str:
    """Run ``pulsar-admin --admin-url URL ARGS...`` and return its stdout."""
    argv = tool_command("org.apache.pulsar.admin.cli.PulsarAdminTool", "--admin-url", admin_url, *args)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"pulsar-admin {' '.join(args)} failed (exit {proc.returncode}): "
                                 f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout
