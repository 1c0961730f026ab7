//! Tests for the Kakao stand-in (added in the next commit).
