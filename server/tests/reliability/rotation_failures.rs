//! A rotation that fails half-way must change nothing and leave the database
//! connection it ran on fit for the next request. On SQLite rotations run in
//! batches on a writer connection of their own (storage::rotation), each in
//! a savepoint, so a statement that fails must roll back its rotation alone;
//! these tests provoke that with a successor whose hash is taken.

use std::time::Duration;

use baton::domain::Timestamp;
use baton::domain::refresh_token::{RefreshToken, RefreshTokenHash};
use baton::domain::rotation::{RotationOutcome, RotationRequest};
use baton::storage::rotation::Rotations;
use baton::storage::sessions as store;
use baton::storage::{PoolSettings, StorageError, connect};

use crate::backend_test;
use crate::helpers::*;

/// The stored hash of a refresh token as a client holds it.
pub(crate) fn hash_of(token: &str) -> RefreshTokenHash {
    RefreshToken::presented(token)
        .expect("a well-formed refresh token")
        .hash()
}

pub(crate) fn rotation(presented: &str, successor: RefreshTokenHash, now: i64) -> RotationRequest {
    RotationRequest {
        presented: hash_of(presented),
        successor,
        successor_id: uuid::Uuid::new_v4().to_string(),
        now: Timestamp::from_millis(now),
        refresh_ttl: Duration::from_secs(60),
        user_agent: Some("rotation-failures".to_owned()),
    }
}

pub(crate) fn fresh_hash() -> RefreshTokenHash {
    RefreshToken::generate().hash()
}

/// The rotation writer for a database, as the server opens it.
pub(crate) fn rotations(db: &sea_orm::DatabaseConnection) -> Rotations {
    Rotations::open(db, Duration::from_secs(5)).expect("the rotation writer starts")
}

fn rotated(outcome: RotationOutcome) -> baton::domain::rotation::Family {
    match outcome {
        RotationOutcome::Rotated { family, .. } => family,
        other => panic!("the token is still live, so it rotates: {other:?}"),
    }
}

backend_test!(
    a_rotation_whose_successor_cannot_be_stored_changes_nothing_and_leaves_the_connection_usable,
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        let second = app.login_body(&user).await;
        let session = first.session_id();
        // One connection: the pool cannot hand out a different one afterwards.
        let settings = PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        };
        let db = connect(&app.settings.database_url(), &settings)
            .await
            .expect("a one-connection pool");
        let now = app.clock_now_millis();
        let before = store::find_session(&db, &session).await.unwrap().unwrap();

        let rotations = rotations(&db);
        let taken = hash_of(&second.refresh_token);
        let failed = rotations
            .rotate(rotation(&first.refresh_token, taken, now + 1))
            .await;
        assert!(
            matches!(failed, Err(StorageError::UniqueViolation(_))),
            "a successor hash that is taken is refused: {failed:?}"
        );
        let presented = store::find_token(&db, &hash_of(&first.refresh_token).0)
            .await
            .unwrap()
            .expect("the presented token is still there");
        assert_eq!(presented.rotated_at, None, "the token was not claimed");
        let after = store::find_session(&db, &session).await.unwrap().unwrap();
        assert_eq!(after, before, "the session was not touched");
        assert_eq!(
            store::count_live_tokens(&db, &session, now).await.unwrap(),
            1
        );

        let rotated = rotated(
            rotations
                .rotate(rotation(&first.refresh_token, fresh_hash(), now + 2))
                .await
                .expect("the same connection serves the next rotation"),
        );
        assert_eq!(rotated.session_id, session);
        assert_eq!(rotated.user_id, before.user_id);
        assert_eq!(
            store::count_live_tokens(&db, &session, now).await.unwrap(),
            1
        );
        db.close().await.unwrap();
    }
);

backend_test!(a_token_rotates_once_and_then_never_again, |app| {
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let now = app.clock_now_millis();
    let db = &app.db;
    let rotations = rotations(db);
    let once = rotations
        .rotate(rotation(&tokens.refresh_token, fresh_hash(), now + 1))
        .await
        .unwrap();
    assert!(
        matches!(once, RotationOutcome::Rotated { .. }),
        "a live token rotates"
    );
    let twice = rotations
        .rotate(rotation(&tokens.refresh_token, fresh_hash(), now + 2))
        .await
        .unwrap();
    assert!(
        matches!(twice, RotationOutcome::AlreadyRotated(_)),
        "a rotated token does not rotate again: {twice:?}"
    );
    assert_eq!(
        store::count_live_tokens(db, &tokens.session_id(), now)
            .await
            .unwrap(),
        1
    );
});

backend_test!(the_successor_never_outlives_its_session, |app| {
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let now = app.clock_now_millis();
    let session = store::find_session(&app.db, &tokens.session_id())
        .await
        .unwrap()
        .unwrap();
    let mut far = rotation(&tokens.refresh_token, fresh_hash(), now + 1);
    far.refresh_ttl = Duration::from_millis(
        u64::try_from(session.absolute_expires_at - now).unwrap() + 86_400_000,
    );
    let outcome = rotations(&app.db).rotate(far).await.unwrap();
    let RotationOutcome::Rotated { successor, .. } = outcome else {
        panic!("a live token rotates: {outcome:?}");
    };
    assert_eq!(
        successor.expires_at.as_millis(),
        session.absolute_expires_at
    );
});
