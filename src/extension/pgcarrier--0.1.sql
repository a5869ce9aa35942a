/* pgcarrier--0.1.sql: what CREATE EXTENSION pgcarrier adds (docs/builtin.md) */

\echo Use "CREATE EXTENSION pgcarrier" to load this file. \quit

-- The pooler is started by shared_preload_libraries, not by this script:
-- the extension's objects only look at it.

-- The pooler's settings, as the server holds them.
CREATE VIEW @extschema@.settings AS
  SELECT name, setting, unit, context, source, short_desc
    FROM pg_catalog.pg_settings
   WHERE name LIKE 'pgcarrier.%';

COMMENT ON VIEW @extschema@.settings IS 'the pgcarrier.* settings of the built-in pooler';

GRANT SELECT ON @extschema@.settings TO PUBLIC;	-- what pg_settings shows everyone
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- ------------------------------------------------------------ who may --
-- Roles are cluster-wide: pgcarrier_admin is created by the first
-- CREATE EXTENSION in any database of the cluster (if it does not exist),
-- is shared by every database, and is not dropped by DROP EXTENSION.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgcarrier_admin') THEN
    CREATE ROLE pgcarrier_admin NOLOGIN;
    COMMENT ON ROLE pgcarrier_admin IS 'may read the pgcarrier views and control the built-in pooler (pgcarrier.pause, ...)';
  END IF;
END
$$;

-- ------------------------------------------------- the console in SQL --
-- The admin console's SHOW what (docs/behaviour.md, "Admin console"), its
-- columns named by a column definition list; the views below are the way
-- to read it. Superusers, pgcarrier_admin and pg_monitor.
CREATE FUNCTION @extschema@.show(what text) RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'pgcarrier_show' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION @extschema@.show(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.show(text) TO pgcarrier_admin, pg_monitor;

CREATE VIEW @extschema@.pools AS
  SELECT * FROM @extschema@.show('POOLS') AS t(
    database text, "user" text, cl_active int, cl_waiting int,
    cl_active_cancel_req int, cl_waiting_cancel_req int, sv_active int,
    sv_active_cancel int, sv_being_canceled int, sv_idle int, sv_used int,
    sv_tested int, sv_login int, maxwait int, maxwait_us int, pool_mode text,
    load_balance_hosts text, cl_pinned int, sv_total int, pool_size int);

CREATE VIEW @extschema@.clients AS
  SELECT * FROM @extschema@.show('CLIENTS') AS t(
    type text, "user" text, database text, replication text, state text,
    addr text, port int, local_addr text, local_port int,
    connect_time timestamptz, request_time timestamptz, wait int, wait_us int,
    close_needed int, ptr text, link text, remote_pid int, tls text,
    application_name text, prepared_statements int, id bigint, worker int,
    pinned_by text, pinned_since timestamptz);

CREATE VIEW @extschema@.servers AS
  SELECT * FROM @extschema@.show('SERVERS') AS t(
    type text, "user" text, database text, replication text, state text,
    addr text, port int, local_addr text, local_port int,
    connect_time timestamptz, request_time timestamptz, wait int, wait_us int,
    close_needed int, ptr text, link text, remote_pid int, tls text,
    application_name text, prepared_statements int, id bigint, worker int);

CREATE VIEW @extschema@.stats AS
  SELECT * FROM @extschema@.show('STATS') AS t(
    database text, total_server_assignment_count numeric, total_xact_count numeric,
    total_query_count numeric, total_received numeric, total_sent numeric,
    total_xact_time numeric, total_query_time numeric, total_wait_time numeric,
    total_client_parse_count numeric, total_server_parse_count numeric,
    total_bind_count numeric, avg_server_assignment_count numeric,
    avg_xact_count numeric, avg_query_count numeric, avg_recv numeric,
    avg_sent numeric, avg_xact_time numeric, avg_query_time numeric,
    avg_wait_time numeric, avg_client_parse_count numeric,
    avg_server_parse_count numeric, avg_bind_count numeric,
    total_swap_count numeric, total_pin_count numeric, total_error_count numeric,
    total_server_lost_count numeric, total_exhausted_count numeric,
    total_login_count numeric, avg_wait_p50_us numeric, avg_wait_p99_us numeric,
    total_pins_temp_table numeric, total_pins_advisory_lock numeric,
    total_pins_listen numeric, total_pins_hold_cursor numeric,
    total_pins_sql_prepare numeric, total_pins_session_authorization numeric,
    total_pins_unclassified numeric);

CREATE VIEW @extschema@.pins AS
  SELECT * FROM @extschema@.show('PINS') AS t(
    id bigint, "user" text, database text, addr text, port int, worker int,
    pinned_by text, pinned_since timestamptz, pinned_seconds numeric,
    server_id bigint, remote_pid int);

-- The daemon's own settings (as pgcarrier.ini says them); changeable: a
-- reload changes it (pgcarrier.settings has the pgcarrier.* settings).
CREATE VIEW @extschema@.config AS
  SELECT * FROM @extschema@.show('CONFIG') AS t(
    key text, value text, "default" text, changeable boolean);

CREATE VIEW @extschema@.databases AS
  SELECT * FROM @extschema@.show('DATABASES') AS t(
    name text, host text, port int, database text, force_user text, pool_size int,
    min_pool_size int, reserve_pool_size int, server_lifetime int, pool_mode text,
    load_balance_hosts text, max_connections int, current_connections int,
    max_client_connections int, current_client_connections int, paused int,
    disabled int, reserve_pool int);

CREATE VIEW @extschema@.users AS
  SELECT * FROM @extschema@.show('USERS') AS t(
    name text, pool_size text, reserve_pool_size text, pool_mode text,
    max_user_connections int, current_connections int,
    max_user_client_connections int, current_client_connections int);

CREATE VIEW @extschema@.stats_totals AS
  SELECT * FROM @extschema@.show('STATS_TOTALS') AS t(
    database text, server_assignment_count numeric, xact_count numeric,
    query_count numeric, bytes_received numeric, bytes_sent numeric,
    xact_time numeric, query_time numeric, wait_time numeric,
    client_parse_count numeric, server_parse_count numeric, bind_count numeric);

CREATE VIEW @extschema@.stats_averages AS
  SELECT * FROM @extschema@.show('STATS_AVERAGES') AS t(
    database text, server_assignment_count numeric, xact_count numeric,
    query_count numeric, bytes_received numeric, bytes_sent numeric,
    xact_time numeric, query_time numeric, wait_time numeric,
    avg_client_parse_count numeric, avg_server_parse_count numeric,
    avg_bind_count numeric);

CREATE VIEW @extschema@.totals AS
  SELECT * FROM @extschema@.show('TOTALS') AS t(name text, value numeric);

CREATE VIEW @extschema@.lists AS
  SELECT * FROM @extschema@.show('LISTS') AS t(list text, items int);

CREATE VIEW @extschema@.mem AS
  SELECT * FROM @extschema@.show('MEM') AS t(
    name text, size int, used int, free int, memtotal int);

CREATE VIEW @extschema@.state AS
  SELECT * FROM @extschema@.show('STATE') AS t(key text, value text);

CREATE VIEW @extschema@.version AS
  SELECT * FROM @extschema@.show('VERSION') AS t(version text);

CREATE VIEW @extschema@.workers AS
  SELECT * FROM @extschema@.show('WORKERS') AS t(
    worker int, clients int, login_clients int, servers int, idle_servers int,
    events bigint, loops bigint, cpu_seconds numeric, free_buffers int,
    used_buffers int, pipelined bigint, pipeline_reruns bigint);

CREATE VIEW @extschema@.errors AS
  SELECT * FROM @extschema@.show('ERRORS') AS t(
    database text, sqlstate_class text, count bigint);

COMMENT ON VIEW @extschema@.pools IS 'the built-in pooler''s pools (SHOW POOLS)';
COMMENT ON VIEW @extschema@.clients IS 'the built-in pooler''s client connections (SHOW CLIENTS)';
COMMENT ON VIEW @extschema@.servers IS 'the built-in pooler''s server connections (SHOW SERVERS)';
COMMENT ON VIEW @extschema@.stats IS 'the built-in pooler''s statistics per database (SHOW STATS)';
COMMENT ON VIEW @extschema@.pins IS 'clients pinned to their server connection (SHOW PINS)';
COMMENT ON VIEW @extschema@.config IS 'the built-in pooler''s daemon settings (SHOW CONFIG)';
COMMENT ON VIEW @extschema@.databases IS 'the built-in pooler''s databases (SHOW DATABASES)';
COMMENT ON VIEW @extschema@.users IS 'the built-in pooler''s users (SHOW USERS)';
COMMENT ON VIEW @extschema@.stats_totals IS 'the built-in pooler''s totals per database (SHOW STATS_TOTALS)';
COMMENT ON VIEW @extschema@.stats_averages IS 'the built-in pooler''s averages per database over stats_period (SHOW STATS_AVERAGES)';
COMMENT ON VIEW @extschema@.totals IS 'the built-in pooler''s totals over all databases (SHOW TOTALS)';
COMMENT ON VIEW @extschema@.lists IS 'the built-in pooler''s object counts (SHOW LISTS)';
COMMENT ON VIEW @extschema@.mem IS 'the built-in pooler''s memory in use (SHOW MEM)';
COMMENT ON VIEW @extschema@.state IS 'whether the built-in pooler is paused or shutting down (SHOW STATE)';
COMMENT ON VIEW @extschema@.version IS 'the built-in pooler''s version (SHOW VERSION)';
COMMENT ON VIEW @extschema@.workers IS 'the built-in pooler''s worker threads (SHOW WORKERS)';
COMMENT ON VIEW @extschema@.errors IS 'errors the built-in pooler''s clients got, by SQLSTATE class (SHOW ERRORS)';

REVOKE ALL ON @extschema@.pools, @extschema@.clients, @extschema@.servers,
  @extschema@.stats, @extschema@.pins, @extschema@.config, @extschema@.databases,
  @extschema@.users, @extschema@.stats_totals, @extschema@.stats_averages,
  @extschema@.totals, @extschema@.lists, @extschema@.mem, @extschema@.state,
  @extschema@.version, @extschema@.workers, @extschema@.errors FROM PUBLIC;
GRANT SELECT ON @extschema@.pools, @extschema@.clients, @extschema@.servers,
  @extschema@.stats, @extschema@.pins, @extschema@.config, @extschema@.databases,
  @extschema@.users, @extschema@.stats_totals, @extschema@.stats_averages,
  @extschema@.totals, @extschema@.lists, @extschema@.mem, @extschema@.state,
  @extschema@.version, @extschema@.workers, @extschema@.errors TO pgcarrier_admin, pg_monitor;

-- ------------------------------------------------------------ control --
-- db NULL: every database. Superusers and pgcarrier_admin only.
CREATE FUNCTION @extschema@.pause(db text DEFAULT NULL) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_pause' LANGUAGE C CALLED ON NULL INPUT VOLATILE;
CREATE FUNCTION @extschema@.resume(db text DEFAULT NULL) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_resume' LANGUAGE C CALLED ON NULL INPUT VOLATILE;
CREATE FUNCTION @extschema@.reconnect(db text DEFAULT NULL) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_reconnect' LANGUAGE C CALLED ON NULL INPUT VOLATILE;
CREATE FUNCTION @extschema@.kill_client(id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_kill_client' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION @extschema@.wait_close(db text DEFAULT NULL) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_wait_close' LANGUAGE C CALLED ON NULL INPUT VOLATILE;
CREATE FUNCTION @extschema@.disable(db text) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_disable' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION @extschema@.enable(db text) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_enable' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION @extschema@.kill(db text) RETURNS void
  AS 'MODULE_PATHNAME', 'pgcarrier_kill' LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION @extschema@.pause(text) IS 'PAUSE: let running transactions finish, then close the server connections (NULL: every database)';
COMMENT ON FUNCTION @extschema@.resume(text) IS 'RESUME: serve again after pause (NULL: every database)';
COMMENT ON FUNCTION @extschema@.reconnect(text) IS 'RECONNECT: replace the server connections as they become idle (NULL: every database)';
COMMENT ON FUNCTION @extschema@.kill_client(bigint) IS 'KILL_CLIENT: disconnect the client with this id (pgcarrier.clients.id)';
COMMENT ON FUNCTION @extschema@.wait_close(text) IS 'WAIT_CLOSE: return when the server connections RECONNECT or a reload made stale are closed (NULL: every database)';
COMMENT ON FUNCTION @extschema@.disable(text) IS 'DISABLE: refuse new clients of the database; connected ones go on';
COMMENT ON FUNCTION @extschema@.enable(text) IS 'ENABLE: accept new clients of the database again';
COMMENT ON FUNCTION @extschema@.kill(text) IS 'KILL: disconnect every client and server connection of the database at once';

REVOKE ALL ON FUNCTION @extschema@.pause(text), @extschema@.resume(text),
  @extschema@.reconnect(text), @extschema@.kill_client(bigint), @extschema@.wait_close(text),
  @extschema@.disable(text), @extschema@.enable(text), @extschema@.kill(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.pause(text), @extschema@.resume(text),
  @extschema@.reconnect(text), @extschema@.kill_client(bigint), @extschema@.wait_close(text),
  @extschema@.disable(text), @extschema@.enable(text), @extschema@.kill(text) TO pgcarrier_admin;
