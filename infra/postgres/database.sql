-- A database owned by one client role, closed to every other; a catalog's
-- reader (Trino) may read it and move table pointers.
-- psql -d postgres -v name=DB -v owner=ROLE -v reader=ROLE_OR_EMPTY -f database.sql
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'name', :'owner') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'name', :'reader') WHERE :'reader' <> '' \gexec
\connect :"name"
-- Tables an earlier setup made as the bootstrap user pass to the owner.
SELECT format('ALTER %s %s OWNER TO %I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END,
              c.oid::regclass, :'owner')
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
   AND c.relowner <> :'owner'::regrole
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')) \gexec
-- Iceberg's JdbcCatalog creates its tables at first use, as the owner: the
-- default privileges reach those, the GRANT ON ALL TABLES existing ones.
SELECT format('GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA public TO %I', :'reader') WHERE :'reader' <> '' \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT, UPDATE ON TABLES TO %I',
              :'owner', :'reader') WHERE :'reader' <> '' \gexec
