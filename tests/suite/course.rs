//! The course's numbers (DESIGN.md section 1), through the `course` example itself, so the
//! example the README runs and the test can never drift apart.

use crate::example_course as course_example;

#[test]
fn every_course_number_is_reproduced_to_1e_8() {
    assert_eq!(
        course_example::run().unwrap(),
        0,
        "numbers differ; see the output above"
    );
}
