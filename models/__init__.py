"""Plain torch nn.Modules: the registry, backbones, the baseline and DomainNet. No file I/O
beyond loading weights a user names; imports no other bodyscene package."""
