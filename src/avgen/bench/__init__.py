"""Speed figures (`avgen bench`) and the GPU machine check (`avgen gpu-check`), over library code only."""
