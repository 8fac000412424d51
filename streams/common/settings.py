"""Settings shared by every pipeline, read from the environment only at the edge (main.py).

Every setting has a safe local default, so `make run` works with no configuration; the
README lists each one with its environment variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 2**20


class KafkaSettings(BaseSettings):
    """Where the brokers are and how the clients talk to them (env prefix ``KAFKA_``)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", frozen=True)

    bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port...]")
    replication_factor: int = Field(1, ge=1, description="for topics the app creates")
    # The embedded broker holds a JoinGroup for half the session timeout and notices a
    # dead member only after all of it: Faust's 60 s default means ~30 s per rebalance.
    session_timeout_seconds: float = Field(10.0, gt=0)
    heartbeat_interval_seconds: float = Field(1.0, gt=0)
    # Only the embedded broker under-reports the end of a partition (its defect 1):
    # make run, the tests and the benchmarks turn this on for it.
    correct_end_offsets: bool = Field(
        False, description="ask a Fetch for the true end of a partition (embedded broker)"
    )

    @property
    def url(self) -> str:
        return ";".join(f"kafka://{host}" for host in self.bootstrap.split(","))


class WorkerSettings(BaseSettings):
    """Where a worker keeps its state and serves its web views and metrics."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True)

    data_dir: Path = Field(Path("var/data"), validation_alias="STREAMS_DATA_DIR")
    store: str = Field("rocksdb://", validation_alias="STREAMS_STORE")
    web_bind: str = Field("127.0.0.1", validation_alias="WEB_BIND")
    web_port: int = Field(6066, ge=1, le=65535, validation_alias="WEB_PORT")
    web_host: str = Field("127.0.0.1", validation_alias="WEB_HOST")
    #: Set by the ECS agent in every container; read only when WEB_HOST is ``ecs-task``.
    ecs_metadata_uri: str | None = Field(None, validation_alias="ECS_CONTAINER_METADATA_URI_V4")
    # RocksDB's memory per table partition (make_app): Faust's defaults (a 64 MiB write
    # buffer, up to 3 of them, and a 2 GiB block cache) let a slow stream keep every key
    # version written for months in memory, and a worker holds several partitions.
    rocksdb_write_buffer_mb: int = Field(
        4, ge=1, validation_alias="STREAMS_ROCKSDB_WRITE_BUFFER_MB"
    )
    rocksdb_write_buffers: int = Field(2, ge=2, validation_alias="STREAMS_ROCKSDB_WRITE_BUFFERS")
    rocksdb_block_cache_mb: int = Field(8, ge=1, validation_alias="STREAMS_ROCKSDB_BLOCK_CACHE_MB")
    # Tables restored from their changelogs in runs (faust_fixes/recovery_intake.py);
    # off: Faust's own per-record recovery, ~20 times slower.
    recovery_intake: bool = Field(True, validation_alias="STREAMS_RECOVERY_INTAKE")

    def rocksdb_options(self) -> dict[str, int]:
        """Faust's RocksDB options (faust.stores.rocksdb.RocksDBOptions) for every table."""
        return {
            "write_buffer_size": self.rocksdb_write_buffer_mb * MIB,
            "max_write_buffer_number": self.rocksdb_write_buffers,
            "block_cache_size": self.rocksdb_block_cache_mb * MIB,
        }
