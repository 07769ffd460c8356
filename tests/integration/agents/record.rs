//! Re-records fixtures/agents/recorded (see its README).
