from geo_recon.deploy import pulsar_conf


def test_properties_render_each_key_once_with_java_booleans():
    text = pulsar_conf.render_properties({"a": True, "b": 2, "c": "x;y"})
    assert text.splitlines()[1:] == ["a=true", "b=2", "c=x;y"]


def test_strong_broker_enforces_two_regions_per_write():
    conf = pulsar_conf.broker_conf("geo", "198.18.0.10", 6650, 8080, "198.18.0.2:2181", ["a", "b", "c"])
    assert conf["bookkeeperClientRegionawarePolicyEnabled"] is True
    assert conf["reppRegionsToWrite"] == "a;b;c"
    assert conf["reppMinimumRegionsForDurability"] == 2
    # BookKeeper rejects ackQuorum <= W - W/minRegions; 2/2/2 passes and means "both regions acked".
    w, a = conf["managedLedgerDefaultWriteQuorum"], conf["managedLedgerDefaultAckQuorum"]
    assert a > w - w // 2
    assert conf["metadataStoreUrl"] == "zk:198.18.0.2:2181"


def test_no_policy_can_silently_drop_messages():
    conf = pulsar_conf.standalone_conf("a", "127.0.0.1", 6650, 8080)
    assert conf["ttlDurationDefaultInSeconds"] == 0
    assert conf["backlogQuotaDefaultLimitBytes"] == -1


def test_jvm_command_carries_the_lab_marker_and_small_heaps():
    argv = pulsar_conf.jvm_command("/usr/bin/java", "broker", "/lib", "/conf", "/logs", "mylab", ["--broker-conf", "b"])
    assert argv[0] == "/usr/bin/java"
    assert "-Dgeo.recon.lab=mylab" in argv
    assert "-Xmx384m" in argv
    assert argv[-3:] == ["org.apache.pulsar.PulsarBrokerStarter", "--broker-conf", "b"]
    assert argv[argv.index("-cp") + 1] == "/conf:/lib/*"


def test_every_lab_broker_copies_entries_into_its_cache():
    # Slices of read buffers pinned 214 MB of a standalone's 256 MB of direct memory at 30k msg/s (it died).
    standalone = pulsar_conf.standalone_conf("a", "127.0.0.1", 6650, 8080)
    broker = pulsar_conf.broker_conf("geo", "198.18.0.10", 6650, 8080, "198.18.0.2:2181", ["a", "b"])
    assert standalone["managedLedgerCacheCopyEntries"] is True
    assert broker["managedLedgerCacheCopyEntries"] is True
