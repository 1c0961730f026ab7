//! Table definitions shared by both backends (written by hand; see migrations/).

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Nullable<Text>,
        age -> Nullable<Integer>,
        provider -> Text,
        is_active -> Bool,
        is_staff -> Bool,
        is_superuser -> Bool,
        date_joined -> Timestamp,
        last_login -> Nullable<Timestamp>,
        session_epoch -> BigInt,
    }
}

diesel::table! {
    social_accounts (id) {
        id -> BigInt,
        user_id -> BigInt,
        provider -> Text,
        uid -> BigInt,
        extra_data -> Text,
        connected_at -> Timestamp,
        last_login -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    user_sessions (id) {
        id -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        epoch -> BigInt,
        user_agent -> Text,
        last_seen_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consumed_login_states (state_hash) {
        state_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(social_accounts -> users (user_id));
diesel::joinable!(user_sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, social_accounts, user_sessions);

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        actor_id -> Nullable<BigInt>,
        actor_email -> Text,
        target_id -> Nullable<BigInt>,
        target_email -> Text,
        action -> Text,
        changes -> Text,
        via -> Text,
    }
}

diesel::table! {
    staff_passwords (user_id) {
        user_id -> BigInt,
        password_hash -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(staff_passwords -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, staff_passwords);

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        received_at -> Timestamp,
        kind -> Text,
        event -> Text,
        kakao_id -> Nullable<BigInt>,
        user_id -> Nullable<BigInt>,
        outcome -> Text,
        detail -> Text,
        jti -> Nullable<Text>,
    }
}
