use proc_macro::TokenStream;
#[proc_macro]
pub fn network(_input: TokenStream) -> TokenStream { TokenStream::new() }
