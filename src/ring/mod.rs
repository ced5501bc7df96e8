//! Consistent-hash placement of work onto members.
