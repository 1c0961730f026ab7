//! Kakao stand-in (being written).
