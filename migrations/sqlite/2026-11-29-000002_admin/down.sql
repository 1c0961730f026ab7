DROP INDEX users_is_active_idx;
DROP INDEX users_is_staff_idx;
DROP TABLE staff_passwords;
DROP TABLE audit_log;
