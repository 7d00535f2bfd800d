pub mod floods;
pub mod frames;
pub mod harness;
pub mod natrig;
pub mod scenario;
