//! Shared fixtures for the use-case unit tests: mocks of every port, with a fixed clock
//! and deterministic ids unless a test says otherwise.
