-- Reverses up.sql.
DROP INDEX service_accounts_created_at_idx;
DROP INDEX service_accounts_client_id_key;
DROP INDEX service_accounts_name_key;
DROP TABLE service_accounts;
