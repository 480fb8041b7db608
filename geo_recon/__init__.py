"""geo-recon: prove or disprove that a multi-region Apache Pulsar setup loses nothing."""

__version__ = "0.1.0"
