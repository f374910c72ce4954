// Hostile input: a doc attribute nested 100 deep is an error, not a stack overflow.
miniflow::network! {
    pub struct Net {
        #[doc = (((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("x"))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))]
        input x: [2];
        param w: [2];
        loss cost = mse(x, w);
    }
}

fn main() {}
