DROP INDEX reactions_user_idx;
