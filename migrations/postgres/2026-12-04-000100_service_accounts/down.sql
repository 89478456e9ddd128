-- Reverses up.sql (the indexes go with the table).
DROP TABLE service_accounts;
