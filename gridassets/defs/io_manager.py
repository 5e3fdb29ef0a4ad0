"""Dagster's DuckDB pandas IO manager, made transactional.

The stock `DuckDbClient` deletes a partition's rows and inserts the new ones as two autocommitted
statements: an insert that fails leaves the partition empty. Here the connection the IO manager
writes through is one transaction, so a partition is either fully replaced or untouched. Inserts go
by column name, a column the table lacks is added first (Dagster's own handler fails there), and rows
outside the partition being written are refused (they would never be deleted on a rewrite).
"""


import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, TablePartitionDimension, TableSlice
from dagster_duckdb.io_manager import DuckDbClient, _partition_where_clause
from dagster._core.definitions.metadata import TableMetadataSet
from dagster_duckdb_pandas import DuckDBPandasTypeHandler

from gridassets import warehouse
from gridassets.defs.resources import GridSettings

FRAME = "_gridassets_output"


class TransactionalDuckDbClient(DuckDbClient):
    """Connections that begin a transaction and commit only when the whole write succeeded."""

    def __init__(self, database: str) -> None:
        self.database = database

    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator:  # type: ignore[override]
        with warehouse.connect(self.database) as con, warehouse.transaction(con):
            yield con

    @staticmethod
    def ensure_schema_exists(context, table_slice: TableSlice, connection) -> None:
        # DuckDB 2 refuses other work on a connection while a result is unread: read every result.
        connection.execute(f"create schema if not exists {table_slice.schema}").fetchall()

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        # The stock client swallows the error of a missing table, which would abort our transaction.
        exists = connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchall()[0][0]
        if exists:
            where = ""
            if table_slice.partition_dimensions:
                where = " where " + _partition_where_clause(table_slice.partition_dimensions)
            connection.execute(f"delete from {table_slice.schema}.{table_slice.table}{where}").fetchall()


class FrameTypeHandler(DuckDBPandasTypeHandler):
    """Writes by column name, keeps empty partitions' tables, and refuses rows outside the slice."""

    def handle_output(self, context, table_slice: TableSlice, obj: pd.DataFrame, connection):
        name = f"{table_slice.schema}.{table_slice.table}"
        frame = warehouse.normalize_frame(obj)
        connection.register(FRAME, frame)
        try:
            if table_slice.partition_dimensions:
                _refuse_rows_outside(connection, table_slice.partition_dimensions, name)
            existing = warehouse.table_columns(connection, table_slice.schema, table_slice.table)
            if not existing:
                connection.execute(f"create table {name} as select * from {FRAME} limit 0").fetchall()
            else:
                # A column the code now writes and the stored table lacks is added (older rows get
                # NULL) inside this same transaction, so a new version of an asset can write into
                # a table built by the previous one.
                types = {row[0]: row[1] for row in
                         connection.execute(f"describe select * from {FRAME}").fetchall()}
                for column in [c for c in frame.columns if c not in existing]:
                    context.log.warning(f"{name}: adding column {column} {types[column]}")
                    connection.execute(
                        f'alter table {name} add column "{column}" {types[column]}').fetchall()
            connection.execute(f"insert into {name} by name select * from {FRAME}").fetchall()
        finally:
            # After a failed statement the transaction is aborted and refuses even this; the
            # rollback that follows drops the registration anyway.
            with contextlib.suppress(duckdb.Error):
                connection.unregister(FRAME)
        context.add_output_metadata(
            {
                **(
                    TableMetadataSet(partition_row_count=len(frame))
                    if context.has_partition_key
                    else TableMetadataSet(row_count=len(frame))
                ),
                "storage": "duckdb",
            }
        )


def _refuse_rows_outside(connection, dims: list[TablePartitionDimension], name: str) -> None:
    inside = _partition_where_clause(dims)
    outside = connection.execute(
        f"select count(*) from {FRAME} where not coalesce(({inside}), false)"
    ).fetchall()[0][0]
    if outside:
        raise ValueError(
            f"{outside} row(s) for {name} fall outside the partition being written "
            f"({inside.strip()}); nothing was written"
        )


class WarehouseIOManager(dg.ConfigurableIOManagerFactory):
    """Stores DataFrame assets as DuckDB tables in the warehouse, one transaction per write."""

    settings: GridSettings

    def create_io_manager(self, context) -> DbIOManager:
        database = str(self.settings.resolve().warehouse)
        return DbIOManager(
            type_handlers=[FrameTypeHandler()],
            db_client=TransactionalDuckDbClient(database),
            database=database,
            io_manager_name="WarehouseIOManager",
            default_load_type=pd.DataFrame,
        )
