-- A user's reactions, oldest first: deleting an account takes back every reaction it left, a
-- few hundred at a time, and the sweep looks for deleted accounts with reactions left.
CREATE INDEX reactions_user_idx ON reactions (user_id, id);
