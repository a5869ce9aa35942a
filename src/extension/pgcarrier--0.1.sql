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
