DROP TABLE revoked_tokens;
DROP TABLE messages;
DROP TABLE contacts;
DROP TABLE room_members;
DROP TABLE rooms;
DROP TABLE users;
