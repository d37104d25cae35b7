"""The seed project's network, verbatim from /work/shared/seed/README.md ("Model Architecture").

Only two things are added around the course's code: the imports it relies on, and the class line
dedented (the README's code block indents `class Net` by four spaces, which Python rejects).
Everything inside the class, including the batch-of-one bug in `forward` (`x.squeeze()` then
`log_softmax(dim=1)`), is as the course wrote it.
"""

import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """
     This defines the architecture or structure of the neural network.
    """

    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, 128, kernel_size=3),
            nn.ReLU(),
            nn.BatchNorm2d(128)
        )
        self.onecross1 = nn.Sequential(
            nn.Conv2d(128, 4, kernel_size=3)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(4, 16, kernel_size=3),
            nn.ReLU(),
            nn.BatchNorm2d(16),
            nn.MaxPool2d(2)

        )
        self.conv3 = nn.Sequential(
            nn.Conv2d(16, 16, kernel_size=3),
            nn.ReLU(),
            nn.BatchNorm2d(16),
            nn.Dropout2d(0.1)

        )
        self.onecross1_2 = nn.Sequential(
            nn.Conv2d(16, 16, kernel_size=3)
        )
        self.conv4 = nn.Sequential(
            nn.Conv2d(16, 32, kernel_size=3),
            nn.ReLU(),
            nn.BatchNorm2d(32),
            nn.MaxPool2d(2)
        )
        self.conv5 = nn.Sequential(
            nn.Conv2d(32, 10, kernel_size=1)
        )

        self.gap1 = nn.Sequential(
            nn.AvgPool2d(2)
        )

    def forward(self, x):
        x = self.conv1(x)
        x = self.onecross1(x)
        x = F.relu(self.conv2(x))
        x = self.conv3(x)
        x = self.onecross1_2(x)
        x = self.conv4(x)
        x = self.conv5(x)
        x = self.gap1(x)
        x = x.squeeze()
        return F.log_softmax(x, dim=1)
