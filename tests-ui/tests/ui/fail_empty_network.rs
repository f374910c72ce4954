// A network with no statements.
miniflow::network! {
    pub struct Net {}
}

fn main() {}
