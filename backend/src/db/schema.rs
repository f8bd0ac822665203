//! Table definitions shared by both backends (types that SQLite and PostgreSQL both support).

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        username_key -> Text,
        display_name -> Text,
        display_name_key -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        is_admin -> Bool,
        deactivated_at -> Nullable<Timestamp>,
        last_seen_at -> Nullable<Timestamp>,
        session_generation -> BigInt,
        login_throttle_epoch -> BigInt,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        user_id -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
    }
}

diesel::table! {
    rooms (id) {
        id -> BigInt,
        user_low -> BigInt,
        user_high -> BigInt,
        last_seq -> BigInt,
        last_message_id -> BigInt,
        created_at -> Timestamp,
        last_change_seq -> BigInt,
    }
}

diesel::table! {
    room_members (room_id, user_id) {
        room_id -> BigInt,
        user_id -> BigInt,
        read_up_to -> BigInt,
        sent_count -> BigInt,
    }
}

diesel::table! {
    contacts (owner_id, contact_id) {
        owner_id -> BigInt,
        contact_id -> BigInt,
        room_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        room_id -> BigInt,
        seq -> BigInt,
        sender_id -> BigInt,
        client_msg_id -> Text,
        body -> Text,
        created_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        edited_at -> Nullable<Timestamp>,
        reply_to -> Nullable<BigInt>,
        change_seq -> BigInt,
    }
}

diesel::table! {
    reactions (id) {
        id -> BigInt,
        message_id -> BigInt,
        user_id -> BigInt,
        emoji -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    message_edits (id) {
        id -> BigInt,
        message_id -> BigInt,
        body -> Text,
        replaced_at -> Timestamp,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        user_id -> BigInt,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_id -> Nullable<BigInt>,
        action -> Text,
        target_type -> Text,
        target_id -> BigInt,
        detail -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    uploads (id) {
        id -> Text,
        uploader_id -> BigInt,
        name -> Text,
        content_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        has_thumbnail -> Bool,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    message_attachments (message_id, position) {
        message_id -> BigInt,
        upload_id -> Text,
        position -> Integer,
    }
}

diesel::joinable!(contacts -> rooms (room_id));
diesel::joinable!(room_members -> rooms (room_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(reactions -> messages (message_id));
diesel::joinable!(message_edits -> messages (message_id));
diesel::joinable!(uploads -> users (uploader_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(message_attachments -> messages (message_id));
diesel::joinable!(message_attachments -> uploads (upload_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    rooms,
    room_members,
    contacts,
    messages,
    revoked_tokens,
    audit_log,
    reactions,
    message_edits,
    uploads,
    message_attachments,
    sessions
);
